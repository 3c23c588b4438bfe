// Reads field elements from the storage buffer BUF (the composer names it): each element is
// eight little-endian 32-bit words from word offset `o`, returned as limbs.
fn BUF_load_fe(o: u32) -> Limbs {
    var w: array<u32, 8>;
    for (var k = 0u; k < 8u; k++) {
        w[k] = BUF[o + k];
    }
    return limbs_from_words(w);
}
