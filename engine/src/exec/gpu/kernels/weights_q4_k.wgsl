// Q4_K super-blocks (144 bytes: f16 d, f16 dmin, 12 bytes of 6-bit scales and mins, 128 bytes
// of nibbles) of 256 values in 8 sub-blocks of 32: sub-blocks 2p and 2p+1 share bytes
// 32p .. 32p+31 (low, high nibbles); value = d·scale · q - dmin·min. After weights_blocks.wgsl
// and weights_k_scales.wgsl.

fn w4(i4: u32) -> vec4<f32> {
    let base = (i4 >> 6u) * 144u;
    let e = (i4 & 63u) * 4u;
    let at = k_nibble(e);
    let q = (bytes4(word_at(base + 16u + at.x)) >> vec4<u32>(at.y)) & vec4<u32>(0xfu);
    let dm = k_scales(base, e);
    return dm.x * vec4<f32>(q) - dm.y;
}
fn w1(i: u32) -> f32 {
    let base = (i >> 8u) * 144u;
    let e = i & 255u;
    let at = k_nibble(e);
    let q = (byte_at(base + 16u + at.x) >> at.y) & 0xfu;
    let dm = k_scales(base, e);
    return dm.x * f32(q) - dm.y;
}
