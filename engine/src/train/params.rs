//! `Params`: a model's weights as owned f32 tensors under their canonical names (the shared
//! layout's, `load/layout_named.rs`: Llama's checkpoint names, `model.embed_positions.weight`,
//! `mlm.dense.weight`, …) for every family. The trainer's parameters, their gradients and
//! AdamW's moments are all `Params` of the same names and shapes; `hf_export.rs` writes them
//! under each family's own checkpoint names.

use std::collections::BTreeMap;
use std::path::Path;

use ndarray::{ArrayD, ArrayView1, ArrayView2, IxDyn, Zip};

use super::rng::Rng;
use crate::error::{EngineError, Result};
use crate::load::config::LlamaConfig;
use crate::load::layout::Named;
use crate::load::layout_named::layout_shapes;
use crate::load::model::{Model, ModelSource};
use crate::load::tokenizer::Tokenizer;

/// The checkpoint name of a per-layer weight: `layer_param(3, "mlp.up_proj")`.
pub fn layer_param(layer: usize, leaf: &str) -> String {
    format!("model.layers.{layer}.{leaf}.weight")
}

pub use crate::load::layout_named::{EMBED, LM_HEAD, NORM};

/// Llama's per-layer weights, in checkpoint order (other layouts: [`param_shapes`]).
pub const LAYER_LEAVES: [&str; 9] = [
    "input_layernorm",
    "self_attn.q_proj",
    "self_attn.k_proj",
    "self_attn.v_proj",
    "self_attn.o_proj",
    "post_attention_layernorm",
    "mlp.gate_proj",
    "mlp.up_proj",
    "mlp.down_proj",
];

/// Every parameter of a model of this config with its shape, under the canonical names, for
/// any family (the layout's `layout_shapes`); no `lm_head` when tied.
pub fn param_shapes(c: &LlamaConfig) -> Vec<(String, Vec<usize>)> {
    layout_shapes(c)
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params {
    tensors: BTreeMap<String, ArrayD<f32>>,
}

impl Params {
    /// Fresh weights as Hugging Face initializes them: every matrix and embedding ~ N(0, std²)
    /// (drawn in [`param_shapes`]' order, so a Llama's numbers do not depend on the other
    /// families), every norm weight 1 (Gemma's folded `1 + w`: HF's `w` = 0), every bias 0.
    /// Seeded: the same seed gives the same model.
    pub fn init(c: &LlamaConfig, seed: u64, std: f32) -> Self {
        let mut rng = Rng::derive(seed, 1);
        let tensors = param_shapes(c)
            .into_iter()
            .map(|(name, shape)| {
                let t = match shape.len() {
                    1 if name.ends_with(".bias") => ArrayD::zeros(IxDyn(&shape)),
                    1 => ArrayD::from_elem(IxDyn(&shape), 1.0),
                    _ => ArrayD::from_shape_simple_fn(IxDyn(&shape), || rng.normal() * std),
                };
                (name, t)
            })
            .collect();
        Self { tensors }
    }

    /// Zeros of the same names and shapes (gradients, moments).
    pub fn zeros_like(&self) -> Self {
        let tensors = self
            .tensors
            .iter()
            .map(|(n, t)| (n.clone(), ArrayD::zeros(t.raw_dim())))
            .collect();
        Self { tensors }
    }

    /// Every parameter of `c` from a model folder of any family, under the canonical names: the
    /// folder is loaded as the app loads it (its loader maps the family's checkpoint names,
    /// splits fused tensors, folds Gemma's `1 + w`), then each tensor is copied out.
    pub fn load_dir(dir: &Path, c: &LlamaConfig) -> Result<Self> {
        let model = Model::load(dir)?;
        let mut found: BTreeMap<String, ArrayD<f32>> = model
            .weights
            .named()
            .into_iter()
            .map(|(name, t)| {
                let owned = match t {
                    Named::Matrix(m) => m.to_f32().into_dyn(),
                    Named::Vector(v) => v.clone().into_dyn(),
                };
                (name, owned)
            })
            .collect();
        let mut tensors = BTreeMap::new();
        for (name, shape) in param_shapes(c) {
            let tensor_error = |msg: String| EngineError::Tensor { file: dir.join("model.safetensors"), tensor: name.clone(), msg };
            let t = found
                .remove(&name)
                .ok_or_else(|| tensor_error(format!("missing (the folder's config.json describes another layout than the one expected, shape {shape:?})")))?;
            if t.shape() != shape.as_slice() {
                return Err(tensor_error(format!("shape {:?} does not match {shape:?} expected from config.json", t.shape())));
            }
            tensors.insert(name, t);
        }
        Ok(Self { tensors })
    }

    pub fn insert(&mut self, name: impl Into<String>, t: ArrayD<f32>) {
        self.tensors.insert(name.into(), t);
    }

    pub fn get(&self, name: &str) -> Option<&ArrayD<f32>> {
        self.tensors.get(name)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut ArrayD<f32>> {
        self.tensors.get_mut(name)
    }

    fn require(&self, name: &str) -> Result<&ArrayD<f32>> {
        self.tensors
            .get(name)
            .ok_or_else(|| EngineError::Input(format!("parameter `{name}` is missing")))
    }

    /// A matrix parameter `[out, in]`.
    pub fn mat(&self, name: &str) -> Result<ArrayView2<'_, f32>> {
        self.require(name)?
            .view()
            .into_dimensionality()
            .map_err(|_| EngineError::Input(format!("parameter `{name}` is not a matrix")))
    }

    /// A vector parameter (RMSNorm weights).
    pub fn vector(&self, name: &str) -> Result<ArrayView1<'_, f32>> {
        self.require(name)?
            .view()
            .into_dimensionality()
            .map_err(|_| EngineError::Input(format!("parameter `{name}` is not a vector")))
    }

    /// The output head: `lm_head.weight`, or the embedding when tied.
    pub fn lm_head(&self) -> Result<ArrayView2<'_, f32>> {
        if self.tensors.contains_key(LM_HEAD) {
            self.mat(LM_HEAD)
        } else {
            self.mat(EMBED)
        }
    }

    pub fn lm_head_name(&self) -> &'static str {
        if self.tensors.contains_key(LM_HEAD) {
            LM_HEAD
        } else {
            EMBED
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &ArrayD<f32>)> {
        self.tensors.iter().map(|(n, t)| (n.as_str(), t))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&str, &mut ArrayD<f32>)> {
        self.tensors.iter_mut().map(|(n, t)| (n.as_str(), t))
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    pub fn n_values(&self) -> usize {
        self.tensors.values().map(ArrayD::len).sum()
    }

    /// `self += other`, name by name (names missing from `self` are added).
    pub fn add_assign(&mut self, other: &Params) {
        for (name, t) in &other.tensors {
            match self.tensors.get_mut(name) {
                Some(mine) => Zip::from(mine).and(t).for_each(|a, &b| *a += b),
                None => {
                    self.tensors.insert(name.clone(), t.clone());
                }
            }
        }
    }

    pub fn scale(&mut self, factor: f32) {
        for t in self.tensors.values_mut() {
            t.mapv_inplace(|v| v * factor);
        }
    }

    /// `sqrt(Σ v²)` over every tensor (accumulated in f64).
    pub fn global_norm(&self) -> f32 {
        self.tensors
            .values()
            .flat_map(|t| t.iter())
            .map(|&v| f64::from(v) * f64::from(v))
            .sum::<f64>()
            .sqrt() as f32
    }

    /// `sqrt(Σ v²)` over the tensors whose names start with `prefix`.
    pub fn norm_of(&self, prefix: &str) -> f32 {
        self.tensors
            .iter()
            .filter(|(n, _)| n.starts_with(prefix))
            .flat_map(|(_, t)| t.iter())
            .map(|&v| f64::from(v) * f64::from(v))
            .sum::<f64>()
            .sqrt() as f32
    }

    /// The same values with every element mapped (bf16 rounding).
    pub fn map(&self, f: impl Fn(f32) -> f32) -> Self {
        let tensors = self
            .tensors
            .iter()
            .map(|(n, t)| (n.clone(), t.mapv(&f)))
            .collect();
        Self { tensors }
    }

    /// A runnable `Model` on these weights (the executor's view of the same numbers).
    pub fn to_model(
        &self,
        config: &LlamaConfig,
        tokenizer: Option<Tokenizer>,
        source: ModelSource,
    ) -> Result<Model> {
        Model::from_tensors(
            config.clone(),
            &|name| self.tensors.get(name).cloned(),
            tokenizer,
            source,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> LlamaConfig {
        super::super::presets::tiny_config(40, 16, 24, 2, 4, 2, true)
    }

    #[test]
    fn init_is_seeded_and_shaped_like_the_config() {
        let c = tiny();
        let a = Params::init(&c, 5, 0.02);
        assert_eq!(a, Params::init(&c, 5, 0.02));
        assert_ne!(a, Params::init(&c, 6, 0.02));
        assert_eq!(a.n_values() as u64, c.n_params());
        assert!(a.get(LM_HEAD).is_none(), "tied: no lm_head");
        assert_eq!(a.vector(NORM).unwrap().iter().sum::<f32>(), 16.0);
        let m = a.to_model(&c, None, ModelSource { dir: "x".into(), name: "x".into(), weights_note: String::new() });
        assert!(m.is_ok());
    }
}
