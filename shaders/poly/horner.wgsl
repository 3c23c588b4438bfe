// Polynomials in coefficient form on the device, for the evaluations and the multi-opening:
// linear combinations, evaluation at a point and division by X − b, all over Fr in Montgomery
// form. A polynomial is `n` elements of a storage buffer from element `at`.
//
// Evaluation and division are one Horner scan, split so it runs in parallel: the n coefficients
// are `chunks` runs of `chunk` each. With S_t = Σ_{k ≥ t·chunk} a_k b^(k − t·chunk):
//   poly_horner_chunks   run t's own sum, local_t = Σ_{k < chunk} a_(t·chunk + k) b^k
//   poly_horner_carry    one invocation: S_t = local_t + b^chunk · S_(t+1), from the top; it
//                        keeps S_(t+1) as run t's carry and writes S_0 = p(b) to dst[slot]
//   poly_horner_divide   run t from its carry: q_(i−1) = a_i + b · q_i down its run, the
//                        quotient of p by X − b (q_(n−1) = 0), the remainder p(b) dropped
// exactly what halo2's `eval_polynomial` and `kate_division` compute, in another order (field
// arithmetic is exact). `poly_axpy` adds c · src to dst.

struct Params {
    // elements of the polynomial (or of the axpy)
    n: u32,
    // where the source and the destination start, in elements
    src_at: u32,
    dst_at: u32,
    // elements per run, and runs (chunk · chunks = n)
    chunk: u32,
    chunks: u32,
    // the evaluation's index in dst (poly_horner_carry)
    slot: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
@group(0) @binding(2) var<uniform> params: Params;
// [c] for poly_axpy; [b, b^chunk] for the scans
@group(0) @binding(3) var<storage, read> factors: array<u32>;
// each run's own sum, then each run's carry
@group(0) @binding(4) var<storage, read_write> partials: array<u32>;

const WG: u32 = 64u;

fn invocation(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * WG;
}

@compute @workgroup_size(64)
fn poly_axpy(@builtin(global_invocation_id) gid: vec3<u32>,
             @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = invocation(gid, nwg);
    if i >= params.n {
        return;
    }
    let c = factors_load_fe(0u);
    let o = 8u * (params.dst_at + i);
    dst_store_fe(o, fr_add(dst_load_fe(o), fr_mul(c, src_load_fe(8u * (params.src_at + i)))));
}

@compute @workgroup_size(64)
fn poly_horner_chunks(@builtin(global_invocation_id) gid: vec3<u32>,
                      @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = invocation(gid, nwg);
    if t >= params.chunks {
        return;
    }
    let b = factors_load_fe(0u);
    let first = params.src_at + t * params.chunk;
    var acc: Limbs;
    for (var k = params.chunk; k > 0u; k--) {
        acc = fr_add(fr_mul(acc, b), src_load_fe(8u * (first + k - 1u)));
    }
    partials_store_fe(8u * t, acc);
}

@compute @workgroup_size(64)
fn poly_horner_carry(@builtin(global_invocation_id) gid: vec3<u32>,
                     @builtin(num_workgroups) nwg: vec3<u32>) {
    if invocation(gid, nwg) != 0u {
        return;
    }
    let b_chunk = factors_load_fe(8u);
    var s: Limbs;
    for (var t = params.chunks; t > 0u; t--) {
        partials_store_fe(8u * (params.chunks + t - 1u), s);
        s = fr_add(partials_load_fe(8u * (t - 1u)), fr_mul(b_chunk, s));
    }
    dst_store_fe(8u * params.slot, s);
}

@compute @workgroup_size(64)
fn poly_horner_divide(@builtin(global_invocation_id) gid: vec3<u32>,
                      @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = invocation(gid, nwg);
    if t >= params.chunks {
        return;
    }
    let b = factors_load_fe(0u);
    var acc = partials_load_fe(8u * (params.chunks + t));
    let first = t * params.chunk;
    if t + 1u == params.chunks {
        var zero: Limbs;
        dst_store_fe(8u * (params.dst_at + params.n - 1u), zero);
    }
    for (var i = first + params.chunk; i > first; i--) {
        acc = fr_add(src_load_fe(8u * (params.src_at + i - 1u)), fr_mul(b, acc));
        if i >= 2u {
            dst_store_fe(8u * (params.dst_at + i - 2u), acc);
        }
    }
}
