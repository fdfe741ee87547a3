// Softmax over the last axis, in place, max-subtracted:
//   p[r, j] = exp(s[r, j] − max_j s[r, ·]) / Σ_j exp(s[r, j] − max)
// Masked entries (the -inf bit pattern) are skipped and become exactly 0, without computing
// with infinity.
// Bindings: 0 params; 1 s [rows, len] f32 (rows = n_heads · n, len = k_len).
// Grid: one workgroup of 256 threads per row, folded into x·y.
struct Params {
    rows: u32,
    len: u32,
    _pad0: u32,
    _pad1: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> s: array<f32>;

var<workgroup> red: array<f32, 256>;

fn masked(v: f32) -> bool {
    return bitcast<u32>(v) == 0xff800000u;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let row = wg.y * nwg.x + wg.x;
    if (row >= p.rows) {
        return;
    }
    let base = row * p.len;
    var m = -3.0e38;
    for (var j = li; j < p.len; j += 256u) {
        let v = s[base + j];
        if (!masked(v)) {
            m = max(m, v);
        }
    }
    red[li] = m;
    workgroupBarrier();
    for (var half = 128u; half > 0u; half >>= 1u) {
        if (li < half) {
            red[li] = max(red[li], red[li + half]);
        }
        workgroupBarrier();
    }
    let row_max = red[0];
    workgroupBarrier();
    var sum = 0.0;
    for (var j = li; j < p.len; j += 256u) {
        let v = s[base + j];
        var e = 0.0;
        if (!masked(v)) {
            e = exp(v - row_max);
        }
        s[base + j] = e;
        sum += e;
    }
    red[li] = sum;
    workgroupBarrier();
    for (var half = 128u; half > 0u; half >>= 1u) {
        if (li < half) {
            red[li] += red[li + half];
        }
        workgroupBarrier();
    }
    let total = red[0];
    for (var j = li; j < p.len; j += 256u) {
        s[base + j] = s[base + j] / total;
    }
}
