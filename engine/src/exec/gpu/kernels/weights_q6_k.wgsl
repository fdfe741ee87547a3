// Q6_K super-blocks (210 bytes: 128 bytes ql, 64 bytes qh, 16 × i8 scales, f16 d) of 256
// values in two halves of 128: element l + 32k of a half (l < 32, k < 4) takes the low (k < 2)
// or high nibble of ql[l + 32·(k & 1)] and bits 2k, 2k+1 of qh[l]; value
// = d · scale[l/16 + 2k] · (q - 32). After weights_blocks.wgsl.

// Element e's (ql byte, nibble shift, qh byte, qh shift, scale byte), offsets in the block.
fn q6_at(e: u32) -> array<u32, 5> {
    let half = e >> 7u;
    let k = (e >> 5u) & 3u;
    let l = e & 31u;
    return array<u32, 5>(64u * half + l + 32u * (k & 1u), 4u * (k >> 1u), 128u + 32u * half + l, 2u * k, 192u + 8u * half + l / 16u + 2u * k);
}

fn w4(i4: u32) -> vec4<f32> {
    let base = (i4 >> 6u) * 210u;
    let at = q6_at((i4 & 63u) * 4u);
    let low = (bytes4(word_at(base + at[0])) >> vec4<u32>(at[1])) & vec4<u32>(0xfu);
    let high = (bytes4(word_at(base + at[2])) >> vec4<u32>(at[3])) & vec4<u32>(3u);
    let q = vec4<i32>(low | (high << vec4<u32>(4u))) - vec4<i32>(32);
    let ds = half_at(base + 208u) * f32(as_i8(byte_at(base + at[4])));
    return ds * vec4<f32>(q);
}
fn w1(i: u32) -> f32 {
    let base = (i >> 8u) * 210u;
    let at = q6_at(i & 255u);
    let low = (byte_at(base + at[0]) >> at[1]) & 0xfu;
    let high = (byte_at(base + at[2]) >> at[3]) & 3u;
    let ds = half_at(base + 208u) * f32(as_i8(byte_at(base + at[4])));
    return ds * f32(i32(low | (high << 4u)) - 32);
}
