// Writes one intervention (or the activation rounding) into a hook's buffer, in place.
// The buffer holds the hook [a0, a1, a2] row-major (fewer axes padded with extent 1). Entry
// (i0, i1, i2) is edited when flags[off0 + i0], flags[off1 + i1] and flags[off2 + i2] are all
// set (per-axis selections, as `intervene::Resolved` lays them out); rounding edits every entry.
//   mode 0: 0            mode 1: v · factor       mode 2: v + values[t]
//   mode 3: values[t]    mode 4: v rounded to f16  mode 5: v rounded to bf16 (nearest even)
// Bindings: 0 params; 1 x [len] (read-write); 2 flags [a0 + a1 + a2] u32; 3 values [len] f32
//           (unused by modes 0, 1, 4, 5: any buffer).
// Grid: one thread per element, folded into x·y.
struct Params {
    len: u32,
    mode: u32,
    a1: u32,
    a2: u32,
    off1: u32,
    off2: u32,
    factor: f32,
    _pad: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> flags: array<u32>;
@group(0) @binding(3) var<storage, read> values: array<f32>;

// Round to nearest even at the bf16 boundary; NaN stays NaN (quiet bit kept).
fn round_bf16(v: f32) -> f32 {
    let u = bitcast<u32>(v);
    if ((u & 0x7fffffffu) > 0x7f800000u) {
        return bitcast<f32>(u | 0x00400000u);
    }
    let rounded = u + 0x7fffu + ((u >> 16u) & 1u);
    return bitcast<f32>(rounded & 0xffff0000u);
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let t = (wg.y * nwg.x + wg.x) * 256u + li;
    if (t >= p.len) {
        return;
    }
    let v = x[t];
    if (p.mode == 4u) {
        x[t] = unpack2x16float(pack2x16float(vec2<f32>(v, 0.0))).x;
        return;
    }
    if (p.mode == 5u) {
        x[t] = round_bf16(v);
        return;
    }
    let i2 = t % p.a2;
    let i1 = (t / p.a2) % p.a1;
    let i0 = t / (p.a2 * p.a1);
    if (flags[i0] == 0u || flags[p.off1 + i1] == 0u || flags[p.off2 + i2] == 0u) {
        return;
    }
    switch p.mode {
        case 0u: { x[t] = 0.0; }
        case 1u: { x[t] = v * p.factor; }
        case 2u: { x[t] = v + values[t]; }
        default: { x[t] = values[t]; }
    }
}
