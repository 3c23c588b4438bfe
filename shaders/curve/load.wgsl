// Reads points from the storage buffer BUF: an affine point is 16 words (x, y), an XYZZ point
// 32 words (x, y, zz, zzz).
fn BUF_load_affine(o: u32) -> Affine {
    return Affine(BUF_load_fe(o), BUF_load_fe(o + 8u));
}

fn BUF_load_xyzz(o: u32) -> Xyzz {
    return Xyzz(BUF_load_fe(o), BUF_load_fe(o + 8u), BUF_load_fe(o + 16u), BUF_load_fe(o + 24u));
}
