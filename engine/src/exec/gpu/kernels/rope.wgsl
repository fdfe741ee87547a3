// Rotate-half RoPE (HF/NeoX) of x [n, heads, d_head], in place, at positions pos_offset + p
// (the offset is already in the cos/sin table); dim i pairs with i + d_head/2:
//   a' = a·cos θ − b·sin θ,   b' = b·cos θ + a·sin θ,   θ = (pos_offset + p) · inv_freq[i]
// cos θ and sin θ come from the CPU (cs[p, i] = (cos, sin), f32, computed exactly as the CPU
// reference does), so the GPU's sin/cos accuracy at large angles never enters.
// Bindings: 0 params; 1 cs [n, d_head/2] vec2<f32>; 2 x [n, heads, d_head] (read-write).
// Grid: one thread per (p, head, i < d_head/2), folded into x·y.
struct Params {
    n: u32,
    heads: u32,
    d_head: u32,
    _pad: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> cs: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let half = p.d_head / 2u;
    let t = (wg.y * nwg.x + wg.x) * 256u + li;
    if (t >= p.n * p.heads * half) {
        return;
    }
    let i = t % half;
    let head = (t / half) % p.heads;
    let pos = t / (half * p.heads);
    let c = cs[pos * half + i];
    let at = (pos * p.heads + head) * p.d_head + i;
    let a = x[at];
    let b = x[at + half];
    x[at] = a * c.x - b * c.y;
    x[at + half] = b * c.x + a * c.y;
}
