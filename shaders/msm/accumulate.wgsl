// Pippenger stage 4: bucket accumulation. One invocation per bucket adds the bases sorted into
// it (negated for negative digits) to the bucket's running XYZZ sum, which persists across the
// chunks of one MSM. Identity bases are skipped.
//
// A dispatch adds at most `per_pass` bases per bucket, those from `first` on in the bucket's
// run; the host dispatches passes until the largest bucket is done. This bounds each
// invocation's work (a skewed input cannot make one invocation run for seconds) and stays
// inside lavapipe's per-loop iteration limit (Mesa's gallivm stops any loop after 65535
// iterations, which long unbounded runs hit).

struct Params {
    buckets_total: u32,
    first: u32,
    per_pass: u32,
}

const WG: u32 = 64u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> bases: array<u32>;
@group(0) @binding(2) var<storage, read> sorted: array<u32>;
@group(0) @binding(3) var<storage, read> offsets: array<u32>;
@group(0) @binding(4) var<storage, read> ends: array<u32>;
@group(0) @binding(5) var<storage, read_write> buckets: array<u32>;

@compute @workgroup_size(64)
fn accumulate(@builtin(global_invocation_id) gid: vec3<u32>,
              @builtin(num_workgroups) nwg: vec3<u32>) {
    let b = gid.x + gid.y * nwg.x * WG;
    if b >= params.buckets_total {
        return;
    }
    let start = offsets[b] + params.first;
    let end = min(ends[b], start + params.per_pass);
    if start >= end {
        return;
    }
    let o = 32u * b;
    var acc = buckets_load_xyzz(o);
    for (var s = start; s < end; s++) {
        let e = sorted[s];
        let i = e >> 1u;
        var q = bases_load_affine(16u * i);
        if (e & 1u) == 1u {
            q = affine_neg(q);
        }
        acc = xyzz_add_affine(acc, q);
    }
    buckets_store_xyzz(o, acc);
}
