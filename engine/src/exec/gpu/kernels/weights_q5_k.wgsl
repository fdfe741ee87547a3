// Q5_K super-blocks (176 bytes: Q4_K's d, dmin and 12 scale bytes, then 32 bytes qh, then 128
// bytes of nibbles): bit j of qh[l] is the fifth bit of element l of sub-block j (elements
// are laid out as Q4_K's). After weights_blocks.wgsl and weights_k_scales.wgsl.
fn w4(i4: u32) -> vec4<f32> {
    let base = (i4 >> 6u) * 176u;
    let e = (i4 & 63u) * 4u;
    let at = k_nibble(e);
    let low = (bytes4(word_at(base + 48u + at.x)) >> vec4<u32>(at.y)) & vec4<u32>(0xfu);
    let high = (bytes4(word_at(base + 16u + (e & 31u))) >> vec4<u32>(e >> 5u)) & vec4<u32>(1u);
    let dm = k_scales(base, e);
    return dm.x * vec4<f32>(low | (high << vec4<u32>(4u))) - dm.y;
}
fn w1(i: u32) -> f32 {
    let base = (i >> 8u) * 176u;
    let e = i & 255u;
    let at = k_nibble(e);
    let low = (byte_at(base + 48u + at.x) >> at.y) & 0xfu;
    let high = (byte_at(base + 16u + (e & 31u)) >> (e >> 5u)) & 1u;
    let dm = k_scales(base, e);
    return dm.x * f32(low | (high << 4u)) - dm.y;
}
