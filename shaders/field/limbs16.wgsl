// Limbs for 256-bit field elements: sixteen 16-bit limbs, each in a u32, products in 32 bits.
// Needs nothing beyond core WGSL, so it runs on every adapter (and in browsers).

const NL: u32 = 16u;
const LIMB_MASK: u32 = 0xffffu;
alias Limbs = array<u32, 16>;

// x + a * b + c as (low limb, carry): at most (2^16 - 1)^2 + 2 (2^16 - 1) = 2^32 - 1.
fn mac(x: u32, a: u32, b: u32, c: u32) -> vec2<u32> {
    let t = x + a * b + c;
    return vec2<u32>(t & 0xffffu, t >> 16u);
}

// a + b + c as (sum limb, carry), with c in {0, 1}.
fn adc(a: u32, b: u32, c: u32) -> vec2<u32> {
    let t = a + b + c;
    return vec2<u32>(t & 0xffffu, t >> 16u);
}

// Storage holds every element as eight little-endian 32-bit words.
fn limbs_from_words(w: array<u32, 8>) -> Limbs {
    var x = w;
    var r: Limbs;
    for (var i = 0u; i < 8u; i++) {
        r[2u * i] = x[i] & 0xffffu;
        r[2u * i + 1u] = x[i] >> 16u;
    }
    return r;
}

fn limbs_to_words(l: Limbs) -> array<u32, 8> {
    var x = l;
    var r: array<u32, 8>;
    for (var i = 0u; i < 8u; i++) {
        r[i] = x[2u * i] | (x[2u * i + 1u] << 16u);
    }
    return r;
}
