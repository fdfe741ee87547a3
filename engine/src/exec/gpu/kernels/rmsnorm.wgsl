// RMSNorm of each row, as the CPU reference computes it:
//   scale[r] = sqrt(mean_j x[r, j]² + eps)        (TransformerLens hook_scale)
//   y[r, j]  = g[j] · (x[r, j] · (1 / scale[r]))
// given_scale = 1 skips the first line and reads scale[r] (after an edit of hook_scale).
// Bindings: 0 params; 1 x [rows, d]; 2 g [d]; 3 scale [rows]; 4 y [rows, d] (all f32).
// Grid: one workgroup of 256 threads per row, folded into x·y; a tree in workgroup
// memory sums the squares.
struct Params {
    rows: u32,
    d: u32,
    eps: f32,
    given_scale: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> scale: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

var<workgroup> sums: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let row = wg.y * nwg.x + wg.x;
    if (row >= p.rows) {
        return;
    }
    let base = row * p.d;
    if (p.given_scale != 0u) {
        let inv_given = 1.0 / scale[row];
        for (var j = li; j < p.d; j += 256u) {
            y[base + j] = g[j] * (x[base + j] * inv_given);
        }
        return;
    }
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
    let rms = sqrt(sums[0] / f32(p.d) + p.eps);
    let inv = 1.0 / rms;
    if (li == 0u) {
        scale[row] = rms;
    }
    for (var j = li; j < p.d; j += 256u) {
        y[base + j] = g[j] * (x[base + j] * inv);
    }
}
