// Weight prelude, f16 storage without shader-f16: the same bytes as weights_f16.wgsl, read as
// u32 words each holding two halves (low half = lower index), unpacked to f32.
@group(0) @binding(1) var<storage, read> w: array<vec2<u32>>;
fn w4(i4: u32) -> vec4<f32> {
    let q = w[i4];
    return vec4<f32>(unpack2x16float(q.x), unpack2x16float(q.y));
}
fn w1(i: u32) -> f32 {
    let q = w[i >> 2u];
    let word = select(q.x, q.y, (i & 2u) != 0u);
    return unpack2x16float(word)[i & 1u];
}
