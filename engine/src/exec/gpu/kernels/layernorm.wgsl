// LayerNorm of each row, as the CPU reference computes it (torch's biased variance):
//   mean[r]  = Σ_j x[r, j] / d
//   scale[r] = sqrt(Σ_j (x[r, j] − mean[r])² / d + eps)      (TransformerLens hook_scale)
//   y[r, j]  = (x[r, j] − mean[r]) · (1 / scale[r]) · g[j] + b[j]
// given_scale = 1 skips the scale and reads scale[r] (after an edit or rounding of
// hook_scale); the mean is computed again either way.
// Bindings: 0 params; 1 x [rows, d]; 2 g [d]; 3 b [d]; 4 scale [rows]; 5 y [rows, d] (all f32).
// Grid: one workgroup of 256 threads per row, folded into x·y; trees in workgroup memory sum
// the values and then the squared deviations.
struct Params {
    rows: u32,
    d: u32,
    eps: f32,
    given_scale: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read_write> scale: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;

var<workgroup> sums: array<f32, 256>;

fn reduce(li: u32) -> f32 {
    workgroupBarrier();
    for (var half = 128u; half > 0u; half >>= 1u) {
        if (li < half) {
            sums[li] += sums[li + half];
        }
        workgroupBarrier();
    }
    let total = sums[0];
    workgroupBarrier();
    return total;
}

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
        s += x[base + j];
    }
    sums[li] = s;
    let mean = reduce(li) / f32(p.d);
    var inv = 0.0;
    if (p.given_scale != 0u) {
        inv = 1.0 / scale[row];
    } else {
        var v = 0.0;
        for (var j = li; j < p.d; j += 256u) {
            let c = x[base + j] - mean;
            v += c * c;
        }
        sums[li] = v;
        let sd = sqrt(reduce(li) / f32(p.d) + p.eps);
        inv = 1.0 / sd;
        if (li == 0u) {
            scale[row] = sd;
        }
    }
    for (var j = li; j < p.d; j += 256u) {
        y[base + j] = (x[base + j] - mean) * inv * g[j] + b[j];
    }
}
