// The quotient's expressions on the device: one invocation per row interprets the circuit's
// compiled opcode stream (`keel_prover::plonk::Opcodes`), so every circuit runs on this one kernel
// with no hand-written code per gate. Four words per operation, `[op, dst, a, b]`:
//   0 r[dst] = constants[a]          1 r[dst] = column a at (row + b) mod n
//   2 r[dst] = -r[a]                 3, 4, 5 r[dst] = r[a] + r[b], r[a] - r[b], r[a] * r[b]
//   6 r[dst] = r[a] * constants[b]   7 acc = acc * constants[b] + r[a]
// Column a is the key's column a while a < params.key (resident on the device across proofs:
// fixed columns, σ, the Lagrange selectors, the part's points), the proof's column a − key
// otherwise. Registers live in storage, register-major (`r` of the dispatch's row `t` at r · rows + t), so
// neighbouring rows touch neighbouring words. Values stay in Montgomery form throughout.

struct Params {
    // rows of the domain: every column's length
    n: u32,
    // rows this dispatch evaluates, from `start`
    rows: u32,
    start: u32,
    // operations in the stream
    ops: u32,
    // columns in `key_columns`; the rest are in `columns`
    key: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> program: array<u32>;
@group(0) @binding(1) var<storage, read> constants: array<u32>;
@group(0) @binding(2) var<storage, read> columns: array<u32>;
@group(0) @binding(3) var<storage, read_write> registers: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<u32>;
@group(0) @binding(5) var<uniform> params: Params;
@group(0) @binding(6) var<storage, read> key_columns: array<u32>;

const WG: u32 = 64u;

fn invocation(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * WG;
}

fn reg(r: u32, t: u32) -> u32 {
    return 8u * (r * params.rows + t);
}

@compute @workgroup_size(64)
fn quotient_interpret(@builtin(global_invocation_id) gid: vec3<u32>,
                      @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = invocation(gid, nwg);
    if t >= params.rows {
        return;
    }
    let row = params.start + t;
    var acc: Limbs;
    for (var i = 0u; i < params.ops; i++) {
        let code = program[4u * i];
        let dst = program[4u * i + 1u];
        let a = program[4u * i + 2u];
        let b = program[4u * i + 3u];
        switch code {
            case 0u: {
                registers_store_fe(reg(dst, t), constants_load_fe(8u * a));
            }
            case 1u: {
                let at = (row + b) % params.n;
                var v: Limbs;
                if a < params.key {
                    v = key_columns_load_fe(8u * (a * params.n + at));
                } else {
                    v = columns_load_fe(8u * ((a - params.key) * params.n + at));
                }
                registers_store_fe(reg(dst, t), v);
            }
            case 2u: {
                registers_store_fe(reg(dst, t), fr_neg(registers_load_fe(reg(a, t))));
            }
            case 3u: {
                let x = registers_load_fe(reg(a, t));
                let y = registers_load_fe(reg(b, t));
                registers_store_fe(reg(dst, t), fr_add(x, y));
            }
            case 4u: {
                let x = registers_load_fe(reg(a, t));
                let y = registers_load_fe(reg(b, t));
                registers_store_fe(reg(dst, t), fr_sub(x, y));
            }
            case 5u: {
                let x = registers_load_fe(reg(a, t));
                let y = registers_load_fe(reg(b, t));
                registers_store_fe(reg(dst, t), fr_mul(x, y));
            }
            case 6u: {
                let x = registers_load_fe(reg(a, t));
                registers_store_fe(reg(dst, t), fr_mul(x, constants_load_fe(8u * b)));
            }
            case 7u: {
                acc = fr_add(fr_mul(acc, constants_load_fe(8u * b)), registers_load_fe(reg(a, t)));
            }
            default: {}
        }
    }
    out_store_fe(8u * row, acc);
}
