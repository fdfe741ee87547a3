// Q5_1 blocks (24 bytes: f16 d, f16 m, u32 qh, 16 bytes of nibbles as Q5_0): value = q · d + m.
// After weights_blocks.wgsl.
fn w4(i4: u32) -> vec4<f32> {
    let base = (i4 >> 3u) * 24u;
    let e = (i4 & 7u) * 4u;
    let low = (bytes4(word_at(base + 8u + (e & 15u))) >> vec4<u32>(select(0u, 4u, e >= 16u))) & vec4<u32>(0xfu);
    let high = (vec4<u32>(word_at(base + 4u)) >> (vec4<u32>(e) + vec4<u32>(0u, 1u, 2u, 3u))) & vec4<u32>(1u);
    return vec4<f32>(low | (high << vec4<u32>(4u))) * half_at(base) + half_at(base + 2u);
}
fn w1(i: u32) -> f32 {
    let base = (i >> 5u) * 24u;
    let e = i & 31u;
    let low = (byte_at(base + 8u + (e & 15u)) >> select(0u, 4u, e >= 16u)) & 0xfu;
    let high = (word_at(base + 4u) >> e) & 1u;
    return f32(low | (high << 4u)) * half_at(base) + half_at(base + 2u);
}
