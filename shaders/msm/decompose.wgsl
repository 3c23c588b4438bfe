// Pippenger stage 1: signed-digit windows. One invocation per scalar.
//
// Scalar i (canonical, eight little-endian 32-bit words) is cut into `windows` windows of `c`
// bits, from the bottom. A window value v (plus the carry from below) above 2^(c-1) becomes the
// negative digit v - 2^c and carries one into the next window, so every digit has magnitude at
// most 2^(c-1) and a window needs only 2^(c-1) buckets. Non-zero digits are counted per bucket
// (for the counting sort) and recorded as keys[w * n + i] = (bucket << 1) | negative, where
// bucket = w * buckets + |digit| - 1; a zero digit is recorded as NO_KEY. The largest count is
// kept in `max_count`.

struct Params {
    n: u32,
    c: u32,
    windows: u32,
    buckets: u32,
}

const NO_KEY: u32 = 0xffffffffu;
const WG: u32 = 64u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> scalars: array<u32>;
@group(0) @binding(2) var<storage, read_write> keys: array<u32>;
@group(0) @binding(3) var<storage, read_write> counts: array<atomic<u32>>;
// The largest bucket's size, so the host can bound the accumulation's passes.
@group(0) @binding(4) var<storage, read_write> max_count: atomic<u32>;

@compute @workgroup_size(64)
fn decompose(@builtin(global_invocation_id) gid: vec3<u32>,
             @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    let n = params.n;
    if i >= n {
        return;
    }
    var s: array<u32, 8>;
    for (var k = 0u; k < 8u; k++) {
        s[k] = scalars[8u * i + k];
    }
    let c = params.c;
    let full = 1u << c;
    let half = full >> 1u;
    var carry = 0u;
    for (var w = 0u; w < params.windows; w++) {
        let bit = w * c;
        let word = bit / 32u;
        let shift = bit % 32u;
        var v = 0u;
        if word < 8u {
            v = s[word] >> shift;
            if shift + c > 32u && word + 1u < 8u {
                v |= s[word + 1u] << (32u - shift);
            }
        }
        v = (v & (full - 1u)) + carry;
        var negative = 0u;
        if v > half {
            v = full - v;
            carry = 1u;
            negative = 1u;
        } else {
            carry = 0u;
        }
        var key = NO_KEY;
        if v != 0u {
            let bucket = w * params.buckets + v - 1u;
            key = (bucket << 1u) | negative;
            let before = atomicAdd(&counts[bucket], 1u);
            atomicMax(&max_count, before + 1u);
        }
        keys[w * n + i] = key;
    }
}
