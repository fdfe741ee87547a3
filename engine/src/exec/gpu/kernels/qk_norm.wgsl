// RMSNorm of every head of q or k, in place (Gemma's QK-norm), rows of d_head:
//   x[r, j] = g[j] · (x[r, j] · (1 / sqrt(mean_j x[r, j]² + eps))),   r over (pos, head)
// Bindings: 0 params; 1 x [rows, d] (read-write; rows = n · heads, d = d_head); 2 g [d] (f32).
// Grid: one workgroup of 256 threads per row, folded into x·y; a tree in workgroup memory
// sums the squares (as rmsnorm.wgsl).
struct Params {
    rows: u32,
    d: u32,
    eps: f32,
    _pad: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;

var<workgroup> sums: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let row = wg.y * nwg.x + wg.x;
    if (row >= p.rows) {
        return;
    }
    let base = row * p.d;
    var s = 0.0;
    for (var j = li; j < p.d; j += 256u) {
        let v = x[base + j];
        s += v * v;
    }
    sums[li] = s;
    workgroupBarrier();
    for (var half = 128u; half > 0u; half >>= 1u) {
        if (li < half) {
            sums[li] += sums[li + half];
        }
        workgroupBarrier();
    }
    let inv = 1.0 / sqrt(sums[0] / f32(p.d) + p.eps);
    for (var j = li; j < p.d; j += 256u) {
        x[base + j] = g[j] * (x[base + j] * inv);
    }
}
