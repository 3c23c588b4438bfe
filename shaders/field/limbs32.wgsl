// Limbs for 256-bit field elements: eight 32-bit limbs, products in 64 bits.
// Needs wgpu's SHADER_INT64 feature.

const NL: u32 = 8u;
const LIMB_MASK: u32 = 0xffffffffu;
alias Limbs = array<u32, 8>;

// x + a * b + c as (low limb, carry); never overflows 64 bits for limbs below 2^32.
fn mac(x: u32, a: u32, b: u32, c: u32) -> vec2<u32> {
    let t = u64(x) + u64(a) * u64(b) + u64(c);
    return vec2<u32>(u32(t & 0xfffffffflu), u32(t >> 32u));
}

// a + b + c as (sum limb, carry), with c in {0, 1}.
fn adc(a: u32, b: u32, c: u32) -> vec2<u32> {
    let t = u64(a) + u64(b) + u64(c);
    return vec2<u32>(u32(t & 0xfffffffflu), u32(t >> 32u));
}

// Storage holds every element as eight little-endian 32-bit words.
fn limbs_from_words(w: array<u32, 8>) -> Limbs {
    return w;
}

fn limbs_to_words(l: Limbs) -> array<u32, 8> {
    return l;
}
