// Q4_1 blocks (20 bytes: f16 d, f16 m, 16 bytes of nibbles as Q4_0): value = q · d + m.
// After weights_blocks.wgsl.
fn w4(i4: u32) -> vec4<f32> {
    let base = (i4 >> 3u) * 20u;
    let e = (i4 & 7u) * 4u;
    let q = (bytes4(word_at(base + 4u + (e & 15u))) >> vec4<u32>(select(0u, 4u, e >= 16u))) & vec4<u32>(0xfu);
    return vec4<f32>(q) * half_at(base) + half_at(base + 2u);
}
fn w1(i: u32) -> f32 {
    let base = (i >> 5u) * 20u;
    let e = i & 31u;
    let q = (byte_at(base + 4u + (e & 15u)) >> select(0u, 4u, e >= 16u)) & 0xfu;
    return f32(q) * half_at(base) + half_at(base + 2u);
}
