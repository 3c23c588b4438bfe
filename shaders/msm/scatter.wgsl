// Pippenger stage 3: the counting sort's scatter (scalars into CSR buckets). One invocation
// per (window, scalar) key: it takes the next free slot of its bucket and writes the scalar's
// index and sign there, as (i << 1) | negative. The order inside a bucket is whatever the
// atomics give; a bucket's sum does not depend on it.

struct Params {
    n: u32,
    total: u32,
}

const NO_KEY: u32 = 0xffffffffu;
const WG: u32 = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> keys: array<u32>;
@group(0) @binding(2) var<storage, read_write> cursor: array<atomic<u32>>;
@group(0) @binding(3) var<storage, read_write> sorted: array<u32>;

@compute @workgroup_size(256)
fn scatter(@builtin(global_invocation_id) gid: vec3<u32>,
           @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = gid.x + gid.y * nwg.x * WG;
    if e >= params.total {
        return;
    }
    let key = keys[e];
    if key == NO_KEY {
        return;
    }
    let slot = atomicAdd(&cursor[key >> 1u], 1u);
    let i = e % params.n;
    sorted[slot] = (i << 1u) | (key & 1u);
}
