// Pippenger stage 5: the bucket reduction, sum over k of k * S_k for each window, in two
// passes of one kernel.
//
// Pass 0: one invocation per (window, segment); a segment is `seg_len` consecutive buckets with
// magnitudes lo..lo+seg_len-1. A running sum from the top bucket down gives sum (k - lo + 1) S_k;
// adding (lo - 1) times the segment's plain sum makes it sum k S_k.
// Pass 1: one invocation per window adds its segments' results.
// Pass 2, one dispatch per window from the top down, one invocation: the accumulator in the
// slot after the last window doubled c times, then the window's sum added (Horner in 2^c). One
// short chain per dispatch: a single invocation running every window's chain gave wrong points
// with 16-bit limbs on lavapipe past about 290 steps, where this split matches the CPU.

struct Params {
    windows: u32,
    buckets: u32,
    segments: u32,
    seg_len: u32,
    pass_: u32,
    window_bits: u32,
    // pass 2: the window this dispatch adds
    window: u32,
}

const WG: u32 = 64u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> buckets: array<u32>;
@group(0) @binding(2) var<storage, read_write> segment_sums: array<u32>;
@group(0) @binding(3) var<storage, read_write> window_sums: array<u32>;

// One entry point and one addition site for both passes (see curve/g1.wgsl on code size).
// Pass 0, one invocation per (window, segment): 2·seg_len steps of running sums, then
// double-and-add steps for (lo - 1) · plain sum, then the final addition. Pass 1, one
// invocation per window: the window's segment results added in turn.
@compute @workgroup_size(64)
fn reduce(@builtin(global_invocation_id) gid: vec3<u32>,
          @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * WG;
    let windows_pass = params.pass_ == 1u;
    let horner_pass = params.pass_ == 2u;
    var invocations = params.windows * params.segments;
    if windows_pass {
        invocations = params.windows;
    }
    if horner_pass {
        invocations = 1u;
    }
    if t >= invocations {
        return;
    }
    let w = t / params.segments;
    let j = t % params.segments;
    let first = w * params.buckets + j * params.seg_len;
    let k = j * params.seg_len;
    var bits = 0u;
    if k != 0u {
        bits = 32u - countLeadingZeros(k);
    }
    let sums = 2u * params.seg_len;
    var steps = sums + 2u * bits + 1u;
    if windows_pass {
        steps = params.segments;
    }
    let per_window = params.window_bits + 1u;
    if horner_pass {
        steps = per_window;
    }
    var running = xyzz_identity();
    var total = xyzz_identity();
    if horner_pass {
        total = window_sums_load_xyzz(32u * params.windows);
    }
    var multiple = xyzz_identity();
    for (var s = 0u; s < steps; s++) {
        var lhs: Xyzz;
        var rhs: Xyzz;
        if horner_pass {
            lhs = total;
            rhs = total;
            if s == params.window_bits {
                rhs = window_sums_load_xyzz(32u * params.window);
            }
        } else if windows_pass {
            lhs = total;
            rhs = segment_sums_load_xyzz(32u * (t * params.segments + s));
        } else if s < sums {
            if (s & 1u) == 0u {
                // running += S_b, buckets from the top of the segment down
                lhs = running;
                rhs = buckets_load_xyzz(32u * (first + params.seg_len - 1u - s / 2u));
            } else {
                lhs = total;
                rhs = running;
            }
        } else if s < sums + 2u * bits {
            let d = s - sums;
            lhs = multiple;
            rhs = multiple;
            if (d & 1u) == 1u {
                rhs = xyzz_identity();
                if ((k >> (bits - 1u - d / 2u)) & 1u) == 1u {
                    rhs = running;
                }
            }
        } else {
            lhs = total;
            rhs = multiple;
        }
        let r = xyzz_add(lhs, rhs);
        if horner_pass || windows_pass || s >= sums + 2u * bits || (s < sums && (s & 1u) == 1u) {
            total = r;
        } else if s < sums {
            running = r;
        } else {
            multiple = r;
        }
    }
    if horner_pass {
        window_sums_store_xyzz(32u * params.windows, total);
    } else if windows_pass {
        window_sums_store_xyzz(32u * t, total);
    } else {
        segment_sums_store_xyzz(32u * t, total);
    }
}
