// Shared by the Q4_K and Q5_K preludes (after weights_blocks.wgsl): a super-block of 256
// values starts f16 d, f16 dmin, then 12 bytes packing 8 sub-blocks' 6-bit scales and mins;
// sub-blocks 2p and 2p+1 take the low and high nibbles of the same 32 bytes.

// ggml's get_scale_min_k4: sub-block j's (scale, min), from the 12 bytes at `s`.
fn scale_min_k4(s: u32, j: u32) -> vec2<f32> {
    if (j < 4u) {
        return vec2<f32>(f32(byte_at(s + j) & 63u), f32(byte_at(s + j + 4u) & 63u));
    }
    let b = byte_at(s + j + 4u);
    let sc = (b & 0xfu) | ((byte_at(s + j - 4u) >> 6u) << 4u);
    let m = (b >> 4u) | ((byte_at(s + j) >> 6u) << 4u);
    return vec2<f32>(f32(sc), f32(m));
}

// Element e's sub-block: (d·scale, dmin·min), as the reference multiplies them.
fn k_scales(base: u32, e: u32) -> vec2<f32> {
    let sm = scale_min_k4(base + 4u, e >> 5u);
    return vec2<f32>(half_at(base) * sm.x, half_at(base + 2u) * sm.y);
}

// Byte offset (within the 128 nibble bytes) and nibble shift of element e.
fn k_nibble(e: u32) -> vec2<u32> {
    return vec2<u32>((e >> 6u) * 32u + (e & 31u), select(0u, 4u, (e & 32u) != 0u));
}
