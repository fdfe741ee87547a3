// A row bias added in place, or every element scaled in place:
//   has_bias = 1:  x[r, j] = x[r, j] + b[j]     (biases of q/k/v/o, the MLP, the MLM head,
//                                                  the decoder's logits bias)
//   has_bias = 0:  x[i]    = x[i] · scale        (Gemma's embedding × √d_model)
// One f32 operation per element, as the CPU reference does it: bit-exact.
// Bindings: 0 params; 1 x [len] (read-write, len = rows · cols); 2 b [cols] (a dummy when
//           has_bias = 0).
// Grid: one thread per element, folded into x·y.
struct Params {
    len: u32,
    cols: u32,
    scale: f32,
    has_bias: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = (wg.y * nwg.x + wg.x) * 256u + li;
    if (i >= p.len) {
        return;
    }
    if (p.has_bias != 0u) {
        x[i] = x[i] + b[i % p.cols];
    } else {
        x[i] = x[i] * p.scale;
    }
}
