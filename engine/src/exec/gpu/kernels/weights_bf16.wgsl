// Weight prelude, bf16 storage (a GGUF's BF16 tensors as they are), rows padded as
// weights_f32.wgsl, read as u32 words each holding two values (low half = lower index). A
// bf16 is the top half of an f32, so widening is a shift.
@group(0) @binding(1) var<storage, read> w: array<vec2<u32>>;
fn bf16_pair(v: u32) -> vec2<f32> {
    return vec2<f32>(bitcast<f32>(v << 16u), bitcast<f32>(v & 0xffff0000u));
}
fn w4(i4: u32) -> vec4<f32> {
    let q = w[i4];
    return vec4<f32>(bf16_pair(q.x), bf16_pair(q.y));
}
fn w1(i: u32) -> f32 {
    let q = w[i >> 2u];
    let word = select(q.x, q.y, (i & 2u) != 0u);
    return bf16_pair(word)[i & 1u];
}
