// Q8_0 blocks (34 bytes: f16 d, 32 × i8): value = q · d. After weights_blocks.wgsl.
fn w4(i4: u32) -> vec4<f32> {
    let base = (i4 >> 3u) * 34u;
    let q = bitcast<vec4<i32>>(vec4<u32>(word_at(base + 2u + (i4 & 7u) * 4u)) << vec4<u32>(24u, 16u, 8u, 0u)) >> vec4<u32>(24u);
    return vec4<f32>(q) * half_at(base);
}
fn w1(i: u32) -> f32 {
    let base = (i >> 5u) * 34u;
    return f32(as_i8(byte_at(base + 2u + (i & 31u)))) * half_at(base);
}
