// Tiled matmul y = x · Wᵀ with W stored [n_out, in] (rows zero-padded to `stride`):
//   y[i, y_col_offset + o] = Σ_k x[x_row_offset + i, k] · W[o, k],  i < m, o < n_out, k < k_len
// Bindings: 0 params; 1 W [n_out, stride] (weight prelude); 2 x [*, k_len] f32;
//           3 y [m, y_stride] f32.
// Grid: (ceil(n_out / 64), ceil(m / 32), 1). Workgroup 16×16: a 32×64 tile of y, each thread
// a 2-row × 4-column block; K advances 16 at a time through workgroup memory.
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

var<workgroup> xs: array<array<f32, 32>, 16>; // [kk][row of the tile]
var<workgroup> ws: array<array<f32, 64>, 16>; // [kk][column of the tile]

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i0 = wg.y * 32u;
    let o0 = wg.x * 64u;
    let tx = lid.x; // columns tx*4 .. tx*4+3
    let ty = lid.y; // rows ty*2, ty*2+1
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    let k4n = p.stride / 4u;
    for (var k0 = 0u; k0 < p.stride; k0 += 16u) {
        // x tile: 32 rows × 16 k, two elements per thread, consecutive threads along k.
        for (var t = 0u; t < 2u; t++) {
            let idx = li + t * 256u;
            let row = idx / 16u;
            let kk = idx % 16u;
            let i = i0 + row;
            let k = k0 + kk;
            var v = 0.0;
            if (i < p.m && k < p.k_len) {
                v = x[(p.x_row_offset + i) * p.k_len + k];
            }
            xs[kk][row] = v;
        }
        // W tile: 64 rows × 16 k as one vec4 per thread, stored transposed.
        let col = li / 4u;
        let q = li % 4u;
        let o = o0 + col;
        let k4 = k0 / 4u + q;
        var wv = vec4<f32>(0.0);
        if (o < p.n_out && k4 < k4n) {
            wv = w4(o * k4n + k4);
        }
        ws[q * 4u][col] = wv.x;
        ws[q * 4u + 1u][col] = wv.y;
        ws[q * 4u + 2u][col] = wv.z;
        ws[q * 4u + 3u][col] = wv.w;
        workgroupBarrier();
        for (var kk = 0u; kk < 16u; kk++) {
            let b = vec4<f32>(ws[kk][tx * 4u], ws[kk][tx * 4u + 1u], ws[kk][tx * 4u + 2u], ws[kk][tx * 4u + 3u]);
            acc0 += xs[kk][ty * 2u] * b;
            acc1 += xs[kk][ty * 2u + 1u] * b;
        }
        workgroupBarrier();
    }
    for (var c = 0u; c < 4u; c++) {
        let o = o0 + tx * 4u + c;
        if (o >= p.n_out) {
            break;
        }
        let i = i0 + ty * 2u;
        if (i < p.m) {
            y[i * p.y_stride + p.y_col_offset + o] = acc0[c];
        }
        if (i + 1u < p.m) {
            y[(i + 1u) * p.y_stride + p.y_col_offset + o] = acc1[c];
        }
    }
}
