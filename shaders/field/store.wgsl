// Writes a field element to the storage buffer BUF as eight little-endian 32-bit words.
fn BUF_store_fe(o: u32, v: Limbs) {
    var w = limbs_to_words(v);
    for (var k = 0u; k < 8u; k++) {
        BUF[o + k] = w[k];
    }
}
