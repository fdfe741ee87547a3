// Q5_0 blocks (22 bytes: f16 d, u32 qh, 16 bytes of nibbles as Q4_0): bit j of qh is the fifth
// bit of element j; value = (q - 16) · d. After weights_blocks.wgsl.
fn w4(i4: u32) -> vec4<f32> {
    let base = (i4 >> 3u) * 22u;
    let e = (i4 & 7u) * 4u;
    let low = (bytes4(word_at(base + 6u + (e & 15u))) >> vec4<u32>(select(0u, 4u, e >= 16u))) & vec4<u32>(0xfu);
    let high = (vec4<u32>(word_at(base + 2u)) >> (vec4<u32>(e) + vec4<u32>(0u, 1u, 2u, 3u))) & vec4<u32>(1u);
    let q = vec4<i32>(low | (high << vec4<u32>(4u))) - vec4<i32>(16);
    return vec4<f32>(q) * half_at(base);
}
fn w1(i: u32) -> f32 {
    let base = (i >> 5u) * 22u;
    let e = i & 31u;
    let low = (byte_at(base + 6u + (e & 15u)) >> select(0u, 4u, e >= 16u)) & 0xfu;
    let high = (word_at(base + 2u) >> e) & 1u;
    return f32(i32(low | (high << 4u)) - 16) * half_at(base);
}
