// Writes an XYZZ point to the storage buffer BUF as 32 words (x, y, zz, zzz).
fn BUF_store_xyzz(o: u32, p: Xyzz) {
    BUF_store_fe(o, p.x);
    BUF_store_fe(o + 8u, p.y);
    BUF_store_fe(o + 16u, p.zz);
    BUF_store_fe(o + 24u, p.zzz);
}
