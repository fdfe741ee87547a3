// The MLP's activation, by mode:
//   0  SwiGLU:  post = silu(gate) ⊙ up,       silu(x) = x / (1 + exp(−x))
//   1  GeGLU:   post = gelu_tanh(gate) ⊙ up   (Gemma)
//   2  GELU:    post = gate · Φ(gate), Φ by erf (BERT's `gelu`)
//   3  GELU tanh: post = gelu_tanh(gate)      (GPT-2's `gelu_new`)
//   4  ReLU:    post = max(gate, 0)
//   5  SiLU:    post = silu(gate)
// gelu_tanh(x) = 0.5 · x · (1 + tanh(sqrt(2/π) · (x + 0.044715 · x³))), the argument of tanh
// clamped to ±10 (tanh is ±1 in f32 there) so no implementation's exp overflows.
// erf by Abramowitz & Stegun 7.1.26 (|error| ≤ 1.5e-7), odd in x.
// exp's argument in silu is capped at 80 so it never overflows to infinity (the result is
// then ~1e-33 instead of −0: far below any tolerance).
// Bindings: 0 params; 1 gate [len]; 2 up [len] (a dummy in modes 2–5); 3 post [len]
//           (f32; len = n · d_mlp).
// Grid: one thread per element, folded into x·y.
struct Params {
    len: u32,
    mode: u32,
    _pad1: u32,
    _pad2: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> gate: array<f32>;
@group(0) @binding(2) var<storage, read> up: array<f32>;
@group(0) @binding(3) var<storage, read_write> post: array<f32>;

fn silu(x: f32) -> f32 {
    return x / (1.0 + exp(min(-x, 80.0)));
}

fn gelu_tanh(x: f32) -> f32 {
    let inner = 0.7978846 * (x + 0.044715 * x * x * x);
    return 0.5 * x * (1.0 + tanh(clamp(inner, -10.0, 10.0)));
}

fn erf(x: f32) -> f32 {
    let a = abs(x);
    let t = 1.0 / (1.0 + 0.3275911 * a);
    let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    let y = 1.0 - poly * exp(-a * a);
    return select(y, -y, x < 0.0);
}

fn gelu(x: f32) -> f32 {
    return 0.5 * x * (1.0 + erf(x * 0.70710678118654752));
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = (wg.y * nwg.x + wg.x) * 256u + li;
    if (i >= p.len) {
        return;
    }
    let g = gate[i];
    switch p.mode {
        case 0u: { post[i] = silu(g) * up[i]; }
        case 1u: { post[i] = gelu_tanh(g) * up[i]; }
        case 2u: { post[i] = gelu(g); }
        case 3u: { post[i] = gelu_tanh(g); }
        case 4u: { post[i] = max(g, 0.0); }
        default: { post[i] = silu(g); }
    }
}
