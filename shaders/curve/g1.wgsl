// BN254 G1 (y^2 = x^3 + 3 over Fq) in XYZZ coordinates: x = X / ZZ, y = Y / ZZZ, with
// ZZ^3 = ZZZ^2. ZZ = 0 is the identity. Affine points use (0, 0) for the identity, as
// halo2curves does. Coordinates are Montgomery-form Fq elements. Formulas: Bernstein-Lange,
// Explicit-Formulas Database, "shortw-xyzz" (add-2008-s, madd-2008-s, dbl-2008-s-1), with the
// exceptional cases (identity, equal and opposite points) handled.

struct Affine {
    x: Limbs,
    y: Limbs,
}

struct Xyzz {
    x: Limbs,
    y: Limbs,
    zz: Limbs,
    zzz: Limbs,
}

fn xyzz_identity() -> Xyzz {
    var z: Limbs;
    return Xyzz(z, z, z, z);
}

fn xyzz_is_identity(p: Xyzz) -> bool {
    return fq_is_zero(p.zz);
}

fn affine_is_identity(q: Affine) -> bool {
    return fq_is_zero(q.x) && fq_is_zero(q.y);
}

fn affine_neg(q: Affine) -> Affine {
    return Affine(q.x, fq_neg(q.y));
}

// The sum of two points given over a common (zz, zzz), (x1, y1) and (x2, y2); doubles when they
// are equal. Doubling (dbl-2008-s-1) and addition (add-2008-s, madd-2008-s) share every step but
// the first: with U = 2·y1 and M = 3·x1² in place of P = x2 − x1 and R = y2 − y1, the rest is
// the same sequence of multiplications. Folding the two into one keeps each kernel's code small:
// a shader compiler inlines every call, and a kernel with one addition site compiles in a
// fraction of the time of one with separate addition and doubling code (minutes on lavapipe).
fn xyzz_add_common(x1: Limbs, y1: Limbs, x2: Limbs, y2: Limbs, zz: Limbs, zzz: Limbs) -> Xyzz {
    var p = fq_sub(x2, x1);
    var r = fq_sub(y2, y1);
    var doubling = false;
    if fq_is_zero(p) {
        if !fq_is_zero(r) {
            // Opposite points. (y1 = 0 cannot occur: BN254 G1 has no point of order two.)
            return xyzz_identity();
        }
        doubling = true;
        p = fq_double(y1);
        let x1sq = fq_square(x1);
        r = fq_add(fq_double(x1sq), x1sq);
    }
    let pp = fq_square(p);
    let ppp = fq_mul(p, pp);
    let q = fq_mul(x1, pp);
    var x3 = fq_sub(fq_square(r), fq_double(q));
    if !doubling {
        x3 = fq_sub(x3, ppp);
    }
    let y3 = fq_sub(fq_mul(r, fq_sub(q, x3)), fq_mul(y1, ppp));
    return Xyzz(x3, y3, fq_mul(zz, pp), fq_mul(zzz, ppp));
}

// p + q with q affine (madd-2008-s): q is brought to p's (zz, zzz).
fn xyzz_add_affine(p: Xyzz, q: Affine) -> Xyzz {
    if affine_is_identity(q) {
        return p;
    }
    if xyzz_is_identity(p) {
        return Xyzz(q.x, q.y, FQ_ONE, FQ_ONE);
    }
    let u2 = fq_mul(q.x, p.zz);
    let s2 = fq_mul(q.y, p.zzz);
    return xyzz_add_common(p.x, p.y, u2, s2, p.zz, p.zzz);
}

// p + q (add-2008-s): both are brought to the common (zz1·zz2, zzz1·zzz2), which is a valid
// XYZZ representation of each since zz^3 = zzz^2 for both.
fn xyzz_add(p: Xyzz, q: Xyzz) -> Xyzz {
    if xyzz_is_identity(q) {
        return p;
    }
    if xyzz_is_identity(p) {
        return q;
    }
    let u1 = fq_mul(p.x, q.zz);
    let u2 = fq_mul(q.x, p.zz);
    let s1 = fq_mul(p.y, q.zzz);
    let s2 = fq_mul(q.y, p.zzz);
    return xyzz_add_common(u1, s1, u2, s2, fq_mul(p.zz, q.zz), fq_mul(p.zzz, q.zzz));
}
