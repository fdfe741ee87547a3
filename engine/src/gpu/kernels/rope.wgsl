// Rotate-half RoPE (HF/NeoX) of q [n, n_heads, d_head] and k [n, n_kv_heads, d_head], in place,
// at positions pos_offset + p; dim i pairs with i + d_head/2:
//   a' = a·cos θ − b·sin θ,   b' = b·cos θ + a·sin θ,   θ = (pos_offset + p) · inv_freq[i]
// cos θ and sin θ come from the CPU (cs[p, i] = (cos, sin), f32, computed exactly as the CPU
// reference does), so the GPU's sin/cos accuracy at large angles never enters.
// The rotated k rows and the v rows are appended to the layer's KV cache at row pos_offset + p.
// Bindings: 0 params; 1 cs [n, d_head/2] vec2<f32>; 2 q; 3 k; 4 v [n, n_kv_heads, d_head];
//           5 k_cache, 6 v_cache [capacity, n_kv_heads, d_head] (all f32).
// Grid: one thread per (p, head, i < d_head/2) over n_heads + n_kv_heads heads, folded into x·y.
struct Params {
    n: u32,
    n_heads: u32,
    n_kv_heads: u32,
    d_head: u32,
    pos_offset: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> cs: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read_write> q: array<f32>;
@group(0) @binding(3) var<storage, read_write> k: array<f32>;
@group(0) @binding(4) var<storage, read> v: array<f32>;
@group(0) @binding(5) var<storage, read_write> k_cache: array<f32>;
@group(0) @binding(6) var<storage, read_write> v_cache: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let half = p.d_head / 2u;
    let heads = p.n_heads + p.n_kv_heads;
    let t = (wg.y * nwg.x + wg.x) * 256u + li;
    if (t >= p.n * heads * half) {
        return;
    }
    let i = t % half;
    let head = (t / half) % heads;
    let pos = t / (half * heads);
    let c = cs[pos * half + i];
    if (head < p.n_heads) {
        let at = (pos * p.n_heads + head) * p.d_head + i;
        let a = q[at];
        let b = q[at + half];
        q[at] = a * c.x - b * c.y;
        q[at + half] = b * c.x + a * c.y;
    } else {
        let kv_dim = p.n_kv_heads * p.d_head;
        let col = (head - p.n_heads) * p.d_head + i;
        let at = pos * kv_dim + col;
        let a = k[at];
        let b = k[at + half];
        let ra = a * c.x - b * c.y;
        let rb = b * c.x + a * c.y;
        k[at] = ra;
        k[at + half] = rb;
        let cached = (p.pos_offset + pos) * kv_dim + col;
        k_cache[cached] = ra;
        k_cache[cached + half] = rb;
        v_cache[cached] = v[at];
        v_cache[cached + half] = v[at + half];
    }
}
