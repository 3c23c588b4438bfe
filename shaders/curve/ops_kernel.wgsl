// Differential-test kernels for G1, one operation per entry point (as the MSM kernels use
// them). Each record holds p in XYZZ with an arbitrary scaling (32 words), q affine (16 words)
// and q in XYZZ with another scaling (32 words), padded to 88 words. Outputs, 32 words each:
// `g1_add_affine` p + q by mixed addition, `g1_add` p + q by full addition (which doubles when
// p = q). The test compares each with halo2curves; small multiples (the reduction's
// double-and-add) are checked through the MSM.

@group(0) @binding(0) var<storage, read> inputs: array<u32>;
@group(0) @binding(1) var<storage, read_write> outputs: array<u32>;

const RECORD: u32 = 88u;

fn load_input(o: u32) -> Limbs {
    var w: array<u32, 8>;
    for (var k = 0u; k < 8u; k++) {
        w[k] = inputs[o + k];
    }
    return limbs_from_words(w);
}

fn load_xyzz(o: u32) -> Xyzz {
    return Xyzz(load_input(o), load_input(o + 8u), load_input(o + 16u), load_input(o + 24u));
}

fn store_point(o: u32, p: Xyzz) {
    var c = array<Limbs, 4>(p.x, p.y, p.zz, p.zzz);
    for (var j = 0u; j < 4u; j++) {
        var w = limbs_to_words(c[j]);
        for (var k = 0u; k < 8u; k++) {
            outputs[o + 8u * j + k] = w[k];
        }
    }
}

@compute @workgroup_size(64)
fn g1_add_affine(@builtin(global_invocation_id) gid: vec3<u32>) {
    let o = RECORD * gid.x;
    if o >= arrayLength(&inputs) {
        return;
    }
    let q = Affine(load_input(o + 32u), load_input(o + 40u));
    store_point(32u * gid.x, xyzz_add_affine(load_xyzz(o), q));
}

@compute @workgroup_size(64)
fn g1_add(@builtin(global_invocation_id) gid: vec3<u32>) {
    let o = RECORD * gid.x;
    if o >= arrayLength(&inputs) {
        return;
    }
    store_point(32u * gid.x, xyzz_add(load_xyzz(o), load_xyzz(o + 48u)));
}
