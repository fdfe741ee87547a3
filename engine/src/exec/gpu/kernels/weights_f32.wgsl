// Weight prelude, f32 storage. W is row-major [rows, stride] with stride a multiple of 4
// (rows zero-padded), seen as vec4s. w4(i) = elements 4i..4i+3; w1(i) = element i.
@group(0) @binding(1) var<storage, read> w: array<vec4<f32>>;
fn w4(i4: u32) -> vec4<f32> { return w[i4]; }
fn w1(i: u32) -> f32 { return w[i >> 2u][i & 3u]; }
