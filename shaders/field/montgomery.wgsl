// Montgomery arithmetic modulo one prime, written once for every field and limb width.
// The composer replaces FIELD with the field's name (fq, fr) and prepends the constants
// FIELD_P (the modulus), FIELD_INV (-P^-1 mod 2^limb) and FIELD_ONE (R mod P), with R = 2^256,
// in the chosen limbs.
//
// Every function takes and returns fully reduced values (below P). Multiplication is CIOS
// without the extra carry limb, valid because P's top limb is below LIMB_MASK / 2 - 1.

// a - b over the limbs; the borrow out of the top limb goes to *borrow_out.
fn FIELD_sub_raw(a: Limbs, b: Limbs, borrow_out: ptr<function, u32>) -> Limbs {
    var x = a;
    var y = b;
    var r: Limbs;
    var borrow = 0u;
    for (var i = 0u; i < NL; i++) {
        let d = x[i] - y[i];
        let b1 = select(0u, 1u, x[i] < y[i]);
        let d2 = d - borrow;
        let b2 = select(0u, 1u, d < borrow);
        r[i] = d2 & LIMB_MASK;
        borrow = b1 | b2;
    }
    *borrow_out = borrow;
    return r;
}

// Subtracts P once if the value is at least P; for values below 2P.
fn FIELD_reduce_once(a: Limbs) -> Limbs {
    var borrow = 0u;
    let r = FIELD_sub_raw(a, FIELD_P, &borrow);
    if borrow == 1u {
        return a;
    }
    return r;
}

fn FIELD_add(a: Limbs, b: Limbs) -> Limbs {
    var x = a;
    var y = b;
    var r: Limbs;
    var c = 0u;
    for (var i = 0u; i < NL; i++) {
        let t = adc(x[i], y[i], c);
        r[i] = t.x;
        c = t.y;
    }
    // a + b < 2P < 2^256: no carry out of the top limb.
    return FIELD_reduce_once(r);
}

fn FIELD_sub(a: Limbs, b: Limbs) -> Limbs {
    var borrow = 0u;
    var r = FIELD_sub_raw(a, b, &borrow);
    if borrow == 1u {
        var p = FIELD_P;
        var c = 0u;
        for (var i = 0u; i < NL; i++) {
            let t = adc(r[i], p[i], c);
            r[i] = t.x;
            c = t.y;
        }
    }
    return r;
}

fn FIELD_double(a: Limbs) -> Limbs {
    return FIELD_add(a, a);
}

fn FIELD_is_zero(a: Limbs) -> bool {
    var x = a;
    var acc = 0u;
    for (var i = 0u; i < NL; i++) {
        acc |= x[i];
    }
    return acc == 0u;
}

fn FIELD_neg(a: Limbs) -> Limbs {
    if FIELD_is_zero(a) {
        return a;
    }
    var borrow = 0u;
    return FIELD_sub_raw(FIELD_P, a, &borrow);
}

fn FIELD_mul(a: Limbs, b: Limbs) -> Limbs {
    var x = a;
    var y = b;
    var p = FIELD_P;
    var t: Limbs;
    for (var i = 0u; i < NL; i++) {
        let yi = y[i];
        var r = mac(t[0], x[0], yi, 0u);
        var carry_a = r.y;
        let m = (r.x * FIELD_INV) & LIMB_MASK;
        var carry_m = mac(r.x, m, p[0], 0u).y;
        for (var j = 1u; j < NL; j++) {
            r = mac(t[j], x[j], yi, carry_a);
            carry_a = r.y;
            let s = mac(r.x, m, p[j], carry_m);
            carry_m = s.y;
            t[j - 1u] = s.x;
        }
        t[NL - 1u] = carry_m + carry_a;
    }
    return FIELD_reduce_once(t);
}

fn FIELD_square(a: Limbs) -> Limbs {
    return FIELD_mul(a, a);
}
