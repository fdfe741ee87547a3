// Causal or sliding-window mask, in place: query row i sits at absolute position
// q = pos_offset + i and may not see key j beyond it, nor (window > 0) a key at or before
// q − window:  s[h, i, j] = -inf  where j > q  or  j + window <= q.
// (A bidirectional layer records no mask dispatch at all.)
// -inf is written as its bit pattern: WGSL lets compilers assume no infinities in arithmetic,
// so nothing here (or in softmax.wgsl) computes with it.
// Bindings: 0 params; 1 s [n_heads, n, k_len] f32.
// Grid: one thread per element, folded into x·y.
struct Params {
    n: u32,
    k_len: u32,
    n_heads: u32,
    pos_offset: u32,
    window: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> s: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let t = (wg.y * nwg.x + wg.x) * 256u + li;
    if (t >= p.n_heads * p.n * p.k_len) {
        return;
    }
    let j = t % p.k_len;
    let q = p.pos_offset + (t / p.k_len) % p.n;
    if (j > q || (p.window > 0u && j + p.window <= q)) {
        s[t] = bitcast<f32>(0xff800000u);
    }
}
