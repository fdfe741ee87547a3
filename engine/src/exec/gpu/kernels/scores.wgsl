// Attention scores before the mask, GQA (query head h reads kv head h / group):
//   s[h, i, j] = (Σ_d q[i, h, d] · k_cache[j, h / group, d]) · scale,  scale from the caller (Arch::score_scale)
// Bindings: 0 params; 1 q [n, n_heads, d_head]; 2 k_cache [≥ k_len, n_kv_heads, d_head];
//           3 s [n_heads, n, k_len] (all f32).
// Grid: one thread per (h, i, j), folded into x·y.
struct Params {
    n: u32,
    k_len: u32,
    n_heads: u32,
    n_kv_heads: u32,
    d_head: u32,
    group: u32,
    scale: f32,
    _pad: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k_cache: array<f32>;
@group(0) @binding(3) var<storage, read_write> s: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let t = (wg.y * nwg.x + wg.x) * 256u + li;
    if (t >= p.n_heads * p.n * p.k_len) {
        return;
    }
    let j = t % p.k_len;
    let i = (t / p.k_len) % p.n;
    let h = t / (p.k_len * p.n);
    let qb = (i * p.n_heads + h) * p.d_head;
    let kb = (j * p.n_kv_heads + h / p.group) * p.d_head;
    var acc = 0.0;
    for (var d = 0u; d < p.d_head; d++) {
        acc += q[qb + d] * k_cache[kb + d];
    }
    s[t] = acc * p.scale;
}
