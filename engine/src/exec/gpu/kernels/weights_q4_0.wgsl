// Q4_0 blocks (18 bytes: f16 d, 16 bytes of nibbles): element j < 16 is the low nibble of byte
// j, element j ≥ 16 the high nibble of byte j - 16; value = (q - 8) · d. After weights_blocks.wgsl.
fn q4_0_nibbles(base: u32, e: u32) -> vec4<u32> {
    let shift = select(0u, 4u, e >= 16u);
    return (bytes4(word_at(base + 2u + (e & 15u))) >> vec4<u32>(shift)) & vec4<u32>(0xfu);
}
fn w4(i4: u32) -> vec4<f32> {
    let base = (i4 >> 3u) * 18u;
    let q = vec4<i32>(q4_0_nibbles(base, (i4 & 7u) * 4u)) - vec4<i32>(8);
    return vec4<f32>(q) * half_at(base);
}
fn w1(i: u32) -> f32 {
    let base = (i >> 5u) * 18u;
    let e = i & 31u;
    let q = (byte_at(base + 2u + (e & 15u)) >> select(0u, 4u, e >= 16u)) & 0xfu;
    return f32(i32(q) - 8) * half_at(base);
}
