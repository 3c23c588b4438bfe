// Differential-test kernel for one field (FIELD is replaced by the field's name): for each pair
// (a, b) of Montgomery-form elements, writes a * b, a + b, a - b and -a. The test compares
// every output with halo2curves.

@group(0) @binding(0) var<storage, read> inputs: array<u32>;
@group(0) @binding(1) var<storage, read_write> outputs: array<u32>;

const WG: u32 = 64u;

@compute @workgroup_size(64)
fn FIELD_ops(@builtin(global_invocation_id) gid: vec3<u32>,
             @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if 16u * i >= arrayLength(&inputs) {
        return;
    }
    let a = inputs_load_fe(16u * i);
    let b = inputs_load_fe(16u * i + 8u);
    outputs_store_fe(32u * i, FIELD_mul(a, b));
    outputs_store_fe(32u * i + 8u, FIELD_add(a, b));
    outputs_store_fe(32u * i + 16u, FIELD_sub(a, b));
    outputs_store_fe(32u * i + 24u, FIELD_neg(a));
}
