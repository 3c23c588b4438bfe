// Differential-test kernel for one field (FIELD is replaced by the field's name): for each pair
// (a, b) of Montgomery-form elements, writes a * b, a + b, a - b and -a. The test compares
// every output with halo2curves.

@group(0) @binding(0) var<storage, read> inputs: array<u32>;
@group(0) @binding(1) var<storage, read_write> outputs: array<u32>;

fn load_input(o: u32) -> Limbs {
    var w: array<u32, 8>;
    for (var k = 0u; k < 8u; k++) {
        w[k] = inputs[o + k];
    }
    return limbs_from_words(w);
}

fn store_output(o: u32, v: Limbs) {
    var w = limbs_to_words(v);
    for (var k = 0u; k < 8u; k++) {
        outputs[o + k] = w[k];
    }
}

@compute @workgroup_size(64)
fn FIELD_ops(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if 16u * i >= arrayLength(&inputs) {
        return;
    }
    let a = load_input(16u * i);
    let b = load_input(16u * i + 8u);
    store_output(32u * i, FIELD_mul(a, b));
    store_output(32u * i + 8u, FIELD_add(a, b));
    store_output(32u * i + 16u, FIELD_sub(a, b));
    store_output(32u * i + 24u, FIELD_neg(a));
}
