//! Writable hook points: one intervention mechanism for every hook, with the same meaning on
//! the CPU and the GPU.
//!
//! An [`Intervention`] names a hook, a selection (positions, heads, features) and an [`Edit`].
//! Executors apply it right after the op that produces the hook, so every later op sees the
//! edited value and the trace records the value actually used. Head ablation is
//! `Intervention::zero_heads`; activation patching is `Edit::Replace` with values from another
//! pass; steering is `Edit::Add`.
//!
//! [`Intervention::resolve`] turns an intervention into per-axis selection flags and, for
//! `Add`/`Replace`, dense values in the hook's shape for this pass. The CPU applies that with
//! [`Resolved::apply`]; the GPU uploads the same flags and values to its `intervene` kernel.

use std::sync::Arc;

use ndarray::{ArrayViewMutD, Dimension};

use crate::load::config::LlamaConfig;
use crate::error::{EngineError, Result};
use crate::program::hooks::{BlockHook, HookKey};
use crate::program::op_table::{HookSpec, PassDims};
use crate::exec::tensor::{Dim, Tensor};
use crate::exec::trace::Trace;

/// Values for `Add` or `Replace`: a tensor whose dims are some of the hook's dims (matched by
/// name; the hook's other dims broadcast). Position axes are indexed by absolute position:
/// index 0 of the tensor's position axis is `first_position`.
#[derive(Debug, Clone, PartialEq)]
pub struct Values {
    pub tensor: Arc<Tensor>,
    pub first_position: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Edit {
    /// Set the selected values to 0 (ablation).
    Zero,
    /// Multiply the selected values by a factor.
    Scale(f32),
    /// Add values (steering).
    Add(Values),
    /// Replace the selected values by values from another pass (patching).
    Replace(Values),
}

/// Which entries of a hook an intervention touches; `None` means all along that axis.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Select {
    /// Absolute token positions (the `pos` / `q_pos` axis).
    pub positions: Option<Vec<usize>>,
    /// Heads (the `head` / `kv_head` axis).
    pub heads: Option<Vec<usize>>,
    /// Indices along the last axis (`d_model`, `d_head`, `d_mlp`, `vocab` or `k_pos`).
    pub features: Option<Vec<usize>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Intervention {
    pub hook: HookKey,
    pub select: Select,
    pub edit: Edit,
}

/// Rounding applied to every activation right after it is produced: the computation of a
/// lower-precision run, emulated in f32 arithmetic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum ActivationPrecision {
    #[default]
    F32,
    F16,
    Bf16,
}

impl ActivationPrecision {
    pub fn name(self) -> &'static str {
        match self {
            ActivationPrecision::F32 => "f32",
            ActivationPrecision::F16 => "f16",
            ActivationPrecision::Bf16 => "bf16",
        }
    }

    /// `v` rounded to this precision (round to nearest even, as `half` does).
    pub fn round(self, v: f32) -> f32 {
        match self {
            ActivationPrecision::F32 => v,
            ActivationPrecision::F16 => half::f16::from_f32(v).to_f32(),
            ActivationPrecision::Bf16 => half::bf16::from_f32(v).to_f32(),
        }
    }

    /// Rounds every element in place.
    pub fn round_all(self, mut data: ArrayViewMutD<f32>) {
        if self != ActivationPrecision::F32 {
            data.mapv_inplace(|v| self.round(v));
        }
    }
}

impl std::str::FromStr for ActivationPrecision {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "f32" => Ok(Self::F32),
            "f16" => Ok(Self::F16),
            "bf16" => Ok(Self::Bf16),
            other => Err(format!("`{other}` is not an activation precision (f32, f16 or bf16)")),
        }
    }
}

impl Intervention {
    pub fn new(hook: HookKey, edit: Edit) -> Self {
        Self { hook, select: Select::default(), edit }
    }

    /// Zeroes the whole hook.
    pub fn zero(hook: HookKey) -> Self {
        Self::new(hook, Edit::Zero)
    }

    /// Head ablation: `blocks.L.attn.hook_z` of these heads set to 0 at every position.
    pub fn zero_heads(layer: usize, heads: Vec<usize>) -> Self {
        Self::zero(HookKey::Block(layer, BlockHook::Z)).heads(heads)
    }

    /// Patching: the hook takes the value `source` recorded for it.
    pub fn patch_from(source: &Trace, hook: HookKey) -> Result<Self> {
        let tensor = source
            .get_shared(hook)
            .ok_or_else(|| EngineError::Input(format!("the source pass did not record `{hook}` to patch from")))?;
        let rows = tensor.dims.iter().position(|d| d.is_position()).map_or(source.n_tokens(), |a| tensor.shape()[a]);
        let first_position = source.pos_offset + source.n_tokens().saturating_sub(rows);
        Ok(Self::new(hook, Edit::Replace(Values { tensor: Arc::clone(tensor), first_position })))
    }

    pub fn positions(mut self, positions: Vec<usize>) -> Self {
        self.select.positions = Some(positions);
        self
    }

    pub fn heads(mut self, heads: Vec<usize>) -> Self {
        self.select.heads = Some(heads);
        self
    }

    pub fn features(mut self, features: Vec<usize>) -> Self {
        self.select.features = Some(features);
        self
    }

    /// Flags and values for a pass of `dims` starting at `pos_offset`; errors name the hook
    /// and what does not fit.
    pub fn resolve(&self, c: &LlamaConfig, dims: PassDims, pos_offset: usize) -> Result<Resolved> {
        let hook = self.hook;
        let bad = |msg: String| EngineError::Input(format!("intervention on `{hook}`: {msg}"));
        if let Some(l) = hook.layer()
            && l >= c.n_layers()
        {
            return Err(bad(format!("the model has {} layers", c.n_layers())));
        }
        let (_, spec) = crate::program::op::hook_spec(hook.kind()).ok_or_else(|| bad("no such hook".into()))?;
        let shape = spec.shape(c, dims);
        let first = spec.first_position(pos_offset, dims);
        let select = axis_flags(spec, &shape, first, &self.select).map_err(bad)?;
        let (mode, values) = match &self.edit {
            Edit::Zero => (Mode::Zero, None),
            Edit::Scale(f) => (Mode::Scale(*f), None),
            Edit::Add(v) => (Mode::Add, Some(dense_values(spec, &shape, first, &select, v).map_err(bad)?)),
            Edit::Replace(v) => (Mode::Replace, Some(dense_values(spec, &shape, first, &select, v).map_err(bad)?)),
        };
        Ok(Resolved { hook, shape, select, mode, values })
    }
}

/// What an edit does to a selected value `v` (the GPU kernel's `mode` mirrors it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    Zero,
    Scale(f32),
    /// `v + values[i]`
    Add,
    /// `values[i]`
    Replace,
}

/// An intervention laid out for one pass.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub hook: HookKey,
    pub shape: Vec<usize>,
    /// Per axis, whether each index is selected; an entry is edited when all its axes are.
    pub select: Vec<Vec<bool>>,
    pub mode: Mode,
    /// `Add`/`Replace` values in the hook's shape, row-major.
    pub values: Option<Vec<f32>>,
}

impl Resolved {
    /// Edits `data` (the hook's value, in its shape) in place.
    pub fn apply(&self, mut data: ArrayViewMutD<f32>) -> Result<()> {
        if data.shape() != self.shape.as_slice() {
            return Err(EngineError::Shape(format!(
                "intervention on `{}`: the hook holds {:?} but the intervention was laid out for {:?}",
                self.hook,
                data.shape(),
                self.shape
            )));
        }
        let strides = row_major_strides(&self.shape);
        for (flat, (index, v)) in data.indexed_iter_mut().enumerate() {
            let chosen = index.slice().iter().zip(&self.select).all(|(&i, flags)| flags[i]);
            if !chosen {
                continue;
            }
            debug_assert_eq!(flat, index.slice().iter().zip(&strides).map(|(i, s)| i * s).sum::<usize>());
            let given = self.values.as_ref().map_or(0.0, |vals| vals[flat]);
            *v = match self.mode {
                Mode::Zero => 0.0,
                Mode::Scale(f) => *v * f,
                Mode::Add => *v + given,
                Mode::Replace => given,
            };
        }
        Ok(())
    }

    /// The per-axis flags as one u32 array (axis 0's, then axis 1's, …), for the GPU.
    pub fn flags_u32(&self) -> Vec<u32> {
        self.select.iter().flatten().map(|&b| u32::from(b)).collect()
    }
}

fn row_major_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1; shape.len()];
    for a in (0..shape.len().saturating_sub(1)).rev() {
        strides[a] = strides[a + 1] * shape[a + 1];
    }
    strides
}

fn axis_flags(spec: &HookSpec, shape: &[usize], first: usize, select: &Select) -> Result<Vec<Vec<bool>>, String> {
    let dims = spec.dims;
    let mut flags: Vec<Vec<bool>> = shape.iter().map(|&n| vec![true; n]).collect();
    let last = dims.len() - 1;
    let pick = |axis: Option<usize>, what: &str, indices: &Option<Vec<usize>>, absolute: bool| -> Result<Option<(usize, Vec<bool>)>, String> {
        let Some(indices) = indices else { return Ok(None) };
        let axis = axis.ok_or_else(|| format!("it has no {what} axis (dims {})", dims_names(dims)))?;
        let n = shape[axis];
        let mut f = vec![false; n];
        for &i in indices {
            let at = if absolute { i.checked_sub(first) } else { Some(i) };
            match at {
                Some(at) if at < n => f[at] = true,
                // A position outside this pass (e.g. a decode step) is simply not here.
                _ if absolute => {}
                _ => return Err(format!("{what} {i} is outside 0..{n}")),
            }
        }
        Ok(Some((axis, f)))
    };
    let pos_axis = dims.iter().position(|d| d.is_position());
    let head_axis = dims.iter().position(|d| d.is_head());
    let feature_axis = (!dims[last].is_position() && !dims[last].is_head()).then_some(last);
    for (axis, f) in [
        pick(pos_axis, "position", &select.positions, true)?,
        pick(head_axis, "head", &select.heads, false)?,
        pick(feature_axis, "feature", &select.features, false)?,
    ]
    .into_iter()
    .flatten()
    {
        flags[axis] = f;
    }
    Ok(flags)
}

fn dims_names(dims: &[Dim]) -> String {
    let names: Vec<&str> = dims.iter().map(|d| d.name()).collect();
    format!("[{}]", names.join(", "))
}

/// `values` broadcast to the hook's shape: each hook axis indexes the values' axis of the same
/// dim (by absolute position for position axes), or broadcasts where the values lack it. Only
/// selected entries need values (a patch of one position works in a pass of many); the others
/// get 0, which the edit never reads.
fn dense_values(spec: &HookSpec, shape: &[usize], first: usize, select: &[Vec<bool>], values: &Values) -> Result<Vec<f32>, String> {
    let t = &values.tensor;
    if let Some(extra) = t.dims.iter().find(|d| !spec.dims.contains(d)) {
        return Err(format!("the values have a `{}` axis the hook lacks (hook dims {})", extra.name(), dims_names(spec.dims)));
    }
    // For each hook axis: (the values' axis, how hook index i maps to it).
    let map: Vec<Option<(usize, isize)>> = spec
        .dims
        .iter()
        .map(|d| {
            t.dims.iter().position(|e| e == d).map(|b| {
                let shift = if d.is_position() { first as isize - values.first_position as isize } else { 0 };
                (b, shift)
            })
        })
        .collect();
    for (axis, m) in map.iter().enumerate() {
        let Some((b, shift)) = *m else { continue };
        let base = if spec.dims[axis].is_position() { values.first_position as isize } else { 0 };
        let needed = select[axis].iter().enumerate().filter(|(_, s)| **s).map(|(i, _)| i as isize + shift);
        if let Some(outside) = needed.clone().find(|&j| j < 0 || j >= t.shape()[b] as isize) {
            return Err(format!(
                "the values cover {} {} from {base}, but this pass needs {} {}",
                t.shape()[b],
                spec.dims[axis].name(),
                spec.dims[axis].name(),
                outside + base,
            ));
        }
    }
    let len: usize = shape.iter().product();
    let strides = row_major_strides(shape);
    let src = t.data.view();
    let mut out = Vec::with_capacity(len);
    let mut at = vec![0usize; t.dims.len()];
    'entries: for flat in 0..len {
        for (axis, m) in map.iter().enumerate() {
            let i = (flat / strides[axis]) % shape[axis];
            if !select[axis][i] {
                out.push(0.0);
                continue 'entries;
            }
            if let Some((b, shift)) = *m {
                at[b] = (i as isize + shift) as usize;
            }
        }
        out.push(src[at.as_slice()]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{ArrayD, IxDyn};

    fn config() -> LlamaConfig {
        serde_json::from_str(
            r#"{"hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 2,
                "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 11}"#,
        )
        .unwrap()
    }

    fn ramp(shape: &[usize]) -> ArrayD<f32> {
        let n: usize = shape.iter().product();
        ArrayD::from_shape_vec(IxDyn(shape), (0..n).map(|i| i as f32).collect()).unwrap()
    }

    #[test]
    fn zero_heads_touches_only_those_heads() {
        let c = config();
        let dims = PassDims { n: 3, k_len: 3, logit_rows: 1 };
        let r = Intervention::zero_heads(1, vec![2]).resolve(&c, dims, 0).unwrap();
        let mut z = ramp(&[3, 4, 2]); // [pos, head, d_head]
        r.apply(z.view_mut()).unwrap();
        for ((p, h, d), v) in z.clone().into_dimensionality::<ndarray::Ix3>().unwrap().indexed_iter() {
            let want = if h == 2 { 0.0 } else { ((p * 4 + h) * 2 + d) as f32 };
            assert_eq!(*v, want);
        }
    }

    #[test]
    fn replace_indexes_positions_absolutely_and_broadcasts_missing_dims() {
        let c = config();
        // A decode pass at position 5: one row of the residual stream.
        let dims = PassDims { n: 1, k_len: 6, logit_rows: 1 };
        let source = Tensor::new(vec![Dim::Pos, Dim::DModel], ramp(&[6, 8])).unwrap();
        let patch = Intervention::new(
            HookKey::Block(0, BlockHook::ResidPre),
            Edit::Replace(Values { tensor: Arc::new(source), first_position: 0 }),
        );
        let r = patch.resolve(&c, dims, 5).unwrap();
        assert_eq!(r.values.as_deref().unwrap(), &(40..48).map(|i| i as f32).collect::<Vec<_>>()[..]);
        // A steering vector over d_model only broadcasts over positions.
        let steer = Tensor::new(vec![Dim::DModel], ramp(&[8])).unwrap();
        let add = Intervention::new(
            HookKey::Block(0, BlockHook::ResidPost),
            Edit::Add(Values { tensor: Arc::new(steer), first_position: 0 }),
        )
        .positions(vec![1]);
        let r = add.resolve(&c, PassDims { n: 3, k_len: 3, logit_rows: 1 }, 0).unwrap();
        let mut x = ArrayD::<f32>::zeros(IxDyn(&[3, 8]));
        r.apply(x.view_mut()).unwrap();
        assert_eq!(x.sum(), (0..8).sum::<i32>() as f32);
        assert_eq!(x[[1, 7]], 7.0);
        assert_eq!(x[[0, 7]], 0.0);
    }

    #[test]
    fn bad_selections_are_errors_naming_the_hook() {
        let c = config();
        let dims = PassDims { n: 3, k_len: 3, logit_rows: 1 };
        let err = Intervention::zero(HookKey::Block(0, BlockHook::ResidPre)).heads(vec![0]).resolve(&c, dims, 0).unwrap_err();
        assert!(err.to_string().contains("blocks.0.hook_resid_pre") && err.to_string().contains("no head axis"), "{err}");
        let err = Intervention::zero_heads(0, vec![4]).resolve(&c, dims, 0).unwrap_err();
        assert!(err.to_string().contains("head 4 is outside 0..4"), "{err}");
        let err = Intervention::zero_heads(2, vec![0]).resolve(&c, dims, 0).unwrap_err();
        assert!(err.to_string().contains("2 layers"), "{err}");
        let short = Tensor::new(vec![Dim::Pos, Dim::DModel], ramp(&[2, 8])).unwrap();
        let patch = Intervention::new(
            HookKey::Embed,
            Edit::Replace(Values { tensor: Arc::new(short), first_position: 0 }),
        );
        assert!(patch.resolve(&c, dims, 0).unwrap_err().to_string().contains("cover 2 pos from 0, but this pass needs pos 2"));
        // Only the selected positions need values.
        assert!(patch.clone().positions(vec![1]).resolve(&c, dims, 0).is_ok());
    }

    #[test]
    fn rounding_is_round_to_nearest_even() {
        let x = 1.0 + 2f32.powi(-11); // halfway between two f16 values: rounds to even (1.0)
        assert_eq!(ActivationPrecision::F16.round(x), 1.0);
        assert_eq!(ActivationPrecision::Bf16.round(1.0 + 2f32.powi(-8)), 1.0); // a tie: to even
        assert_eq!(ActivationPrecision::Bf16.round(1.0 + 3.0 * 2f32.powi(-8)), 1.0 + 2f32.powi(-6));
        assert_eq!(ActivationPrecision::Bf16.round(0.1), f32::from_bits(0x3DCD_0000)); // 0.10009765625
        assert_eq!(ActivationPrecision::F32.round(0.1), 0.1);
    }
}
