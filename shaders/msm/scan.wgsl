// Exclusive prefix sum of the bucket counts, in three passes: each workgroup scans its block
// of 256 counts and records the block's total; one workgroup scans the block totals; every
// count then gets its block's prefix added. The result is written twice: to `offsets` (where
// each bucket's run starts) and to `cursor` (advanced by the scatter to where it ends).

struct Params {
    len: u32,
    blocks: u32,
}

const WG: u32 = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> counts: array<u32>;
@group(0) @binding(2) var<storage, read_write> offsets: array<u32>;
@group(0) @binding(3) var<storage, read_write> block_sums: array<u32>;
@group(0) @binding(4) var<storage, read_write> cursor: array<u32>;

var<workgroup> shared_sums: array<u32, 256>;

// Inclusive Hillis-Steele scan of shared_sums; every invocation of the workgroup must call it.
fn scan_shared(lid: u32) {
    for (var d = 1u; d < WG; d <<= 1u) {
        workgroupBarrier();
        var add = 0u;
        if lid >= d {
            add = shared_sums[lid - d];
        }
        workgroupBarrier();
        shared_sums[lid] += add;
    }
    workgroupBarrier();
}

@compute @workgroup_size(256)
fn scan_blocks(@builtin(local_invocation_index) lid: u32,
               @builtin(workgroup_id) wid: vec3<u32>) {
    let i = wid.x * WG + lid;
    var v = 0u;
    if i < params.len {
        v = counts[i];
    }
    shared_sums[lid] = v;
    scan_shared(lid);
    if i < params.len {
        offsets[i] = shared_sums[lid] - v;
    }
    if lid == WG - 1u {
        block_sums[wid.x] = shared_sums[lid];
    }
}

// One workgroup: each invocation sums a contiguous run of block totals, the runs' totals are
// scanned in shared memory, and each invocation writes its run's exclusive prefixes back.
@compute @workgroup_size(256)
fn scan_block_sums(@builtin(local_invocation_index) lid: u32) {
    let per = (params.blocks + WG - 1u) / WG;
    let start = lid * per;
    let end = min(start + per, params.blocks);
    var total = 0u;
    for (var b = start; b < end; b++) {
        total += block_sums[b];
    }
    shared_sums[lid] = total;
    scan_shared(lid);
    var running = shared_sums[lid] - total;
    for (var b = start; b < end; b++) {
        let t = block_sums[b];
        block_sums[b] = running;
        running += t;
    }
}

@compute @workgroup_size(256)
fn scan_add(@builtin(local_invocation_index) lid: u32,
            @builtin(workgroup_id) wid: vec3<u32>) {
    let i = wid.x * WG + lid;
    if i < params.len {
        let o = offsets[i] + block_sums[wid.x];
        offsets[i] = o;
        cursor[i] = o;
    }
}
