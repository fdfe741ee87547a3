// Matrix-vector product for 1..4 rows (decode): the same math as matmul.wgsl,
//   y[i, y_col_offset + o] = Σ_k x[x_row_offset + i, k] · W[o, k],  i < m ≤ 4,
// but shaped to stream W once at full memory bandwidth: each group of 32 lanes owns one row
// of W and walks it in vec4 steps (lane, lane + 32, …), so a warp reads 512 contiguous
// bytes; the m input rows ride in the components of one vec4 accumulator; a tree in
// workgroup memory sums the 32 lanes.
// Bindings: 0 params; 1 W [n_out, stride] (weight prelude); 2 x [*, k_len] f32;
//           3 y [m, y_stride] f32.
// Grid: ceil(n_out / 8) workgroups of 256 threads (8 rows of W each), folded into x·y.
struct Params {
    m: u32,
    n_out: u32,
    k_len: u32,
    stride: u32,
    x_row_offset: u32,
    y_stride: u32,
    y_col_offset: u32,
    _pad: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

var<workgroup> partial: array<vec4<f32>, 256>;

fn x_at(i: u32, k: u32) -> f32 {
    if (k < p.k_len) {
        return x[(p.x_row_offset + i) * p.k_len + k];
    }
    return 0.0;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let lane = li % 32u;
    let o = (wg.y * nwg.x + wg.x) * 8u + li / 32u;
    var acc = vec4<f32>(0.0);
    if (o < p.n_out) {
        let k4n = p.stride / 4u;
        for (var k4 = lane; k4 < k4n; k4 += 32u) {
            let wv = w4(o * k4n + k4);
            let k = k4 * 4u;
            for (var i = 0u; i < p.m; i++) {
                let xv = vec4<f32>(x_at(i, k), x_at(i, k + 1u), x_at(i, k + 2u), x_at(i, k + 3u));
                acc[i] += dot(wv, xv);
            }
        }
    }
    partial[li] = acc;
    workgroupBarrier();
    for (var s = 16u; s > 0u; s >>= 1u) {
        if (lane < s) {
            partial[li] += partial[li + s];
        }
        workgroupBarrier();
    }
    if (lane == 0u && o < p.n_out) {
        for (var i = 0u; i < p.m; i++) {
            y[i * p.y_stride + p.y_col_offset + o] = partial[li][i];
        }
    }
}
