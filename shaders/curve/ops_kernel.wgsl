// Differential-test kernels for G1, one operation per entry point (as the MSM kernels use
// them). Each record holds p in XYZZ with an arbitrary scaling (32 words), q affine (16 words)
// and q in XYZZ with another scaling (32 words), padded to 88 words. Outputs, 32 words each:
// `g1_add_affine` p + q by mixed addition, `g1_add` p + q by full addition (which doubles when
// p = q). The test compares each with halo2curves; small multiples (the reduction's
// double-and-add) are checked through the MSM.

@group(0) @binding(0) var<storage, read> inputs: array<u32>;
@group(0) @binding(1) var<storage, read_write> outputs: array<u32>;

const RECORD: u32 = 88u;
const WG: u32 = 64u;

@compute @workgroup_size(64)
fn g1_add_affine(@builtin(global_invocation_id) gid: vec3<u32>,
                 @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    let o = RECORD * i;
    if o >= arrayLength(&inputs) {
        return;
    }
    outputs_store_xyzz(32u * i, xyzz_add_affine(inputs_load_xyzz(o), inputs_load_affine(o + 32u)));
}

@compute @workgroup_size(64)
fn g1_add(@builtin(global_invocation_id) gid: vec3<u32>,
          @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    let o = RECORD * i;
    if o >= arrayLength(&inputs) {
        return;
    }
    outputs_store_xyzz(32u * i, xyzz_add(inputs_load_xyzz(o), inputs_load_xyzz(o + 48u)));
}
