// Shared part of the GGUF block preludes (weights_q*.wgsl follow it): a chunk of W is its
// blocks exactly as the file stores them, row after row, padded to whole u32 words. Blocks of
// 18, 20, 22, 24, 34 or 210 bytes do not start on a word, so bytes are read with shifts.
// Element i of the chunk (row-major [rows, cols], stride = cols) is element i % B of block
// i / B: a row is a whole number of blocks, so blocks follow each other across rows.
@group(0) @binding(1) var<storage, read> w: array<u32>;

// Byte `o` of the chunk.
fn byte_at(o: u32) -> u32 {
    return (w[o >> 2u] >> ((o & 3u) * 8u)) & 0xffu;
}

// Bytes o .. o+3 as one little-endian word (o need not be aligned; the next word is read only
// when the four bytes span it, so it exists).
fn word_at(o: u32) -> u32 {
    let s = (o & 3u) * 8u;
    let lo = w[o >> 2u];
    if (s == 0u) {
        return lo;
    }
    return (lo >> s) | (w[(o >> 2u) + 1u] << (32u - s));
}

// The f16 at byte `o` (every f16 field sits at an even offset), widened exactly.
fn half_at(o: u32) -> f32 {
    return unpack2x16float(w[o >> 2u])[(o >> 1u) & 1u];
}

// The four bytes of a word, lowest first.
fn bytes4(v: u32) -> vec4<u32> {
    return (vec4<u32>(v) >> vec4<u32>(0u, 8u, 16u, 24u)) & vec4<u32>(0xffu);
}

// A byte as a signed i8.
fn as_i8(b: u32) -> i32 {
    return bitcast<i32>(b << 24u) >> 24u;
}
