// Vocabulary softmax at a temperature, per row of logits:
//   probs[r, v] = exp((l[r, v] − max_v l[r, ·]) / t) / Σ_v exp((l[r, v] − max) / t)
// t = temperature (the caller passes 1 for greedy, as the CPU reference does).
// Rows first_row.. of the logits (the last one, for hook_probs) go to probs rows 0...
// Bindings: 0 params; 1 logits [first_row + rows, vocab]; 2 probs [rows, vocab] (f32).
// Grid: one workgroup of 256 threads per row, folded into x·y.
struct Params {
    rows: u32,
    vocab: u32,
    temperature: f32,
    first_row: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> probs: array<f32>;

var<workgroup> red: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let row = wg.y * nwg.x + wg.x;
    if (row >= p.rows) {
        return;
    }
    let base = row * p.vocab;
    let src = (p.first_row + row) * p.vocab;
    var m = -3.0e38;
    for (var j = li; j < p.vocab; j += 256u) {
        m = max(m, logits[src + j]);
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
    for (var j = li; j < p.vocab; j += 256u) {
        let e = exp((logits[src + j] - row_max) / p.temperature);
        probs[base + j] = e;
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
    for (var j = li; j < p.vocab; j += 256u) {
        probs[base + j] = probs[base + j] / total;
    }
}
