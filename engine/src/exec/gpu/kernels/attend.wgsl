// Pattern · V with GQA (query head h reads kv head h / group):
//   z[i, h, d] = Σ_j pattern[h, i, j] · v_cache[j, h / group, d]
// Bindings: 0 params; 1 pattern [n_heads, n, k_len]; 2 v_cache [≥ k_len, n_kv_heads, d_head];
//           3 z [n, n_heads, d_head] (all f32).
// Grid: one thread per (i, h, d), folded into x·y; neighbouring threads read neighbouring d.
struct Params {
    n: u32,
    k_len: u32,
    n_heads: u32,
    n_kv_heads: u32,
    d_head: u32,
    group: u32,
    _pad0: u32,
    _pad1: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> pattern: array<f32>;
@group(0) @binding(2) var<storage, read> v_cache: array<f32>;
@group(0) @binding(3) var<storage, read_write> z: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let t = (wg.y * nwg.x + wg.x) * 256u + li;
    if (t >= p.n * p.n_heads * p.d_head) {
        return;
    }
    let d = t % p.d_head;
    let h = (t / p.d_head) % p.n_heads;
    let i = t / (p.d_head * p.n_heads);
    let pb = (h * p.n + i) * p.k_len;
    let vb = (h / p.group) * p.d_head + d;
    let v_row = p.n_kv_heads * p.d_head;
    var acc = 0.0;
    for (var j = 0u; j < p.k_len; j++) {
        acc += pattern[pb + j] * v_cache[j * v_row + vb];
    }
    z[t] = acc;
}
