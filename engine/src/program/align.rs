//! Two architectures' blocks side by side: their op sequences ([`LayerOp::block`]) aligned by a
//! longest common subsequence over the ops, each difference marked — an op only one block runs,
//! or an op replaced by another of the same role (SwiGLU's `silu_mul` ↔ GeGLU's `gelu_mul`).
//! Differences the op sequence cannot show (a bias, a fused weight, a QK-norm's width, a norm
//! with no pre-norm beside it) are each op's [`Variant`]s.

use crate::load::arch::{Arch, NormPlacement};
use crate::program::op::{LayerOp, layer_op};

/// One row of an aligned pair of blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aligned {
    /// Both blocks run this op here.
    Same(LayerOp),
    /// Only block A runs it.
    OnlyA(LayerOp),
    /// Only block B runs it.
    OnlyB(LayerOp),
    /// The blocks run different ops in the same role (same op-table family, both with
    /// weights or both without).
    Changed(LayerOp, LayerOp),
}

impl Aligned {
    pub fn is_difference(self) -> bool {
        !matches!(self, Aligned::Same(_))
    }

    /// The op on side A, if A runs one here.
    pub fn a(self) -> Option<LayerOp> {
        match self {
            Aligned::Same(op) | Aligned::OnlyA(op) | Aligned::Changed(op, _) => Some(op),
            Aligned::OnlyB(_) => None,
        }
    }

    /// The op on side B, if B runs one here.
    pub fn b(self) -> Option<LayerOp> {
        match self {
            Aligned::Same(op) | Aligned::OnlyB(op) | Aligned::Changed(_, op) => Some(op),
            Aligned::OnlyA(_) => None,
        }
    }
}

/// One block of `a` against one block of `b`, in program order.
pub fn align_blocks(a: &Arch, b: &Arch) -> Vec<Aligned> {
    align_ops(&LayerOp::block(a), &LayerOp::block(b))
}

/// `a` against `b`: the common ops (a longest common subsequence), and between two common ops
/// the ops of each side, paired as `Changed` where their roles match.
pub fn align_ops(a: &[LayerOp], b: &[LayerOp]) -> Vec<Aligned> {
    let lcs = lcs_table(a, b);
    let (mut i, mut j) = (0, 0);
    let (mut gap_a, mut gap_b) = (Vec::new(), Vec::new());
    let mut out = Vec::with_capacity(a.len().max(b.len()));
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            flush_gap(&mut gap_a, &mut gap_b, &mut out);
            out.push(Aligned::Same(a[i]));
            (i, j) = (i + 1, j + 1);
        } else if j == b.len() || (i < a.len() && lcs[i + 1][j] >= lcs[i][j + 1]) {
            gap_a.push(a[i]);
            i += 1;
        } else {
            gap_b.push(b[j]);
            j += 1;
        }
    }
    flush_gap(&mut gap_a, &mut gap_b, &mut out);
    out
}

/// `t[i][j]`: the length of the longest common subsequence of `a[i..]` and `b[j..]`.
fn lcs_table(a: &[LayerOp], b: &[LayerOp]) -> Vec<Vec<usize>> {
    let mut t = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            t[i][j] = if a[i] == b[j] { t[i + 1][j + 1] + 1 } else { t[i + 1][j].max(t[i][j + 1]) };
        }
    }
    t
}

/// Ops that can stand in for each other: the same family in the op table, and both with
/// weights (a projection) or both without (an activation, a product).
fn same_role(x: LayerOp, y: LayerOp) -> bool {
    let (sx, sy) = (layer_op(x), layer_op(y));
    sx.family == sy.family && sx.weights.is_empty() == sy.weights.is_empty()
}

/// The ops between two common ones, in order: each of A's paired with the next of B's in the
/// same role (B's skipped ones are B's alone), unpaired ones alone.
fn flush_gap(gap_a: &mut Vec<LayerOp>, gap_b: &mut Vec<LayerOp>, out: &mut Vec<Aligned>) {
    let mut j = 0;
    for &x in gap_a.iter() {
        match gap_b[j..].iter().position(|&y| same_role(x, y)) {
            Some(k) => {
                out.extend(gap_b[j..j + k].iter().map(|&y| Aligned::OnlyB(y)));
                out.push(Aligned::Changed(x, gap_b[j + k]));
                j += k + 1;
            }
            None => out.push(Aligned::OnlyA(x)),
        }
    }
    out.extend(gap_b[j..].iter().map(|&y| Aligned::OnlyB(y)));
    gap_a.clear();
    gap_b.clear();
}

/// How one op is computed, beyond its name: what two blocks running the same op can still
/// differ in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// The projection adds a bias (Qwen 2's q, k, v; every projection of GPT-2 and BERT).
    Bias,
    /// The projection is a slice of one fused weight (Phi-3's `qkv_proj`, `gate_up_proj`).
    Fused,
    /// QK-norm over one head at a time (Gemma 3, Qwen 3).
    QkNormPerHead,
    /// QK-norm over all heads of q (and of k) at once (OLMo 2).
    QkNormWhole,
    /// The norm of a sublayer's output with no norm before the sublayer (OLMo 2).
    NormAfterOnly,
    /// The norm of a sublayer's output, with a norm before it too (Gemma's sandwich).
    NormSandwich,
}

/// The variants of `op` in `arch`'s block.
pub fn variants(arch: &Arch, op: LayerOp) -> Vec<Variant> {
    use LayerOp as O;
    let mut out = Vec::new();
    let projection = matches!(op, O::Q | O::K | O::V | O::OProj | O::Gate | O::Up | O::Down | O::MlpIn);
    if projection && (arch.biases || (arch.qkv_bias && matches!(op, O::Q | O::K | O::V))) {
        out.push(Variant::Bias);
    }
    if arch.fused_projections && matches!(op, O::Q | O::K | O::V | O::Gate | O::Up) {
        out.push(Variant::Fused);
    }
    match op {
        O::QkNorm if arch.qk_norm_whole => out.push(Variant::QkNormWhole),
        O::QkNorm => out.push(Variant::QkNormPerHead),
        O::AttnPostNorm | O::MlpPostNorm if arch.placement == NormPlacement::PostSublayer => out.push(Variant::NormAfterOnly),
        O::AttnPostNorm | O::MlpPostNorm => out.push(Variant::NormSandwich),
        _ => {}
    }
    out
}

/// The variants of a row's op(s) that one side has and the other has not: `(in A, in B)`.
/// An op only one side runs gives that side's variants.
pub fn variant_difference(a: &Arch, b: &Arch, row: Aligned) -> (Vec<Variant>, Vec<Variant>) {
    let va = row.a().map(|op| variants(a, op)).unwrap_or_default();
    let vb = row.b().map(|op| variants(b, op)).unwrap_or_default();
    let only_a = va.iter().copied().filter(|v| !vb.contains(v)).collect();
    let only_b = vb.iter().copied().filter(|v| !va.contains(v)).collect();
    (only_a, only_b)
}

#[cfg(test)]
#[path = "align_tests.rs"]
mod tests;
