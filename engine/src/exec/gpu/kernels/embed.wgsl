// Embedding gather: x[p, j] = E[ids[p], j], for the rows of E this chunk holds
// (row_start ≤ id < row_start + rows); other positions are left for another chunk.
// Bindings: 0 params; 1 E chunk [rows, stride] (weight prelude); 2 ids [n] u32;
//           3 x [n, d] f32.
// Grid: one thread per (p, j), ceil(n·d / 256) workgroups folded into x·y.
struct Params {
    n: u32,
    d: u32,
    stride: u32,
    row_start: u32,
    rows: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read> ids: array<u32>;
@group(0) @binding(3) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = (wg.y * nwg.x + wg.x) * 256u + li;
    if (i >= p.n * p.d) {
        return;
    }
    let pos = i / p.d;
    let j = i % p.d;
    let id = ids[pos];
    if (id < p.row_start || id >= p.row_start + p.rows) {
        return;
    }
    x[i] = w1((id - p.row_start) * p.stride + j);
}
