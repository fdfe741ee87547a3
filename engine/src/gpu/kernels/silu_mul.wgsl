// SwiGLU product: post = silu(gate) ⊙ up,  silu(x) = x / (1 + exp(−x)).
// exp's argument is capped at 80 so it never overflows to infinity (the result is then
// ~1e-33 instead of −0: far below any tolerance).
// Bindings: 0 params; 1 gate [len]; 2 up [len]; 3 post [len] (f32; len = n · d_mlp).
// Grid: one thread per element, folded into x·y.
struct Params {
    len: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> gate: array<f32>;
@group(0) @binding(2) var<storage, read> up: array<f32>;
@group(0) @binding(3) var<storage, read_write> post: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = (wg.y * nwg.x + wg.x) * 256u + li;
    if (i >= p.len) {
        return;
    }
    let g = gate[i];
    post[i] = g / (1.0 + exp(min(-g, 80.0))) * up[i];
}
