enable f16;
// Weight prelude, f16 storage read natively (needs the shader-f16 feature). Same layout and
// accessors as weights_f32.wgsl; values are widened to f32 and all math stays in f32.
@group(0) @binding(1) var<storage, read> w: array<vec4<f16>>;
fn w4(i4: u32) -> vec4<f32> { return vec4<f32>(w[i4]); }
fn w1(i: u32) -> f32 { return f32(w[i >> 2u][i & 3u]); }
