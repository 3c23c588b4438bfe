// The NTT over BN254's Fr, radix 2, one dispatch per stage (Cooley–Tukey, decimation in time):
// the input is put in bit-reversed order, then stage s (half-size h = 2^s) combines pairs
// (i, i + h) with the twiddle ω^(k·n/2h), k = i mod h. Every value stays in Montgomery form;
// the twiddles are ω^0 … ω^(n/2 − 1) of the transform's own ω, resident between calls.
// `ntt_mul_factors` multiplies element i by factor i (a coset's powers g^i) and `ntt_mul_scalar`
// every element by factor 0 (the inverse's 1/n), so coset and inverse transforms are the same
// stages with a multiplication before or after. Every entry indexes by
// `gid.x + gid.y · num_workgroups.x · 64`, so a dispatch of any size stays within the per-dimension
// limit.

struct Params {
    // log2 of the transform's size
    log_n: u32,
    // the stage (butterflies) or nothing (the other entries)
    stage: u32,
    // elements
    n: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read_write> values: array<u32>;
@group(0) @binding(1) var<storage, read> twiddles: array<u32>;
@group(0) @binding(2) var<uniform> params: Params;
@group(0) @binding(3) var<storage, read> factors: array<u32>;

const WG: u32 = 64u;

fn invocation(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * WG;
}

@compute @workgroup_size(64)
fn ntt_bitreverse(@builtin(global_invocation_id) gid: vec3<u32>,
                  @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = invocation(gid, nwg);
    if i >= params.n {
        return;
    }
    let j = reverseBits(i) >> (32u - params.log_n);
    // each pair is swapped once, by its smaller index
    if i < j {
        let a = values_load_fe(8u * i);
        let b = values_load_fe(8u * j);
        values_store_fe(8u * i, b);
        values_store_fe(8u * j, a);
    }
}

@compute @workgroup_size(64)
fn ntt_butterfly(@builtin(global_invocation_id) gid: vec3<u32>,
                 @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = invocation(gid, nwg);
    if t >= params.n / 2u {
        return;
    }
    let s = params.stage;
    let half = 1u << s;
    let k = t & (half - 1u);
    let i = ((t >> s) << (s + 1u)) | k;
    let j = i + half;
    let w = twiddles_load_fe(8u * (k << (params.log_n - 1u - s)));
    let u = values_load_fe(8u * i);
    let v = fr_mul(values_load_fe(8u * j), w);
    values_store_fe(8u * i, fr_add(u, v));
    values_store_fe(8u * j, fr_sub(u, v));
}

@compute @workgroup_size(64)
fn ntt_mul_factors(@builtin(global_invocation_id) gid: vec3<u32>,
                   @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = invocation(gid, nwg);
    if i >= params.n {
        return;
    }
    values_store_fe(8u * i, fr_mul(values_load_fe(8u * i), factors_load_fe(8u * i)));
}

@compute @workgroup_size(64)
fn ntt_mul_scalar(@builtin(global_invocation_id) gid: vec3<u32>,
                  @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = invocation(gid, nwg);
    if i >= params.n {
        return;
    }
    values_store_fe(8u * i, fr_mul(values_load_fe(8u * i), factors_load_fe(0u)));
}
