//! `Params`: a model's weights as owned f32 tensors under their checkpoint names
//! (`model.layers.0.self_attn.q_proj.weight`, …). The trainer's parameters, their gradients
//! and AdamW's moments are all `Params` of the same names and shapes.

use std::collections::BTreeMap;
use std::path::Path;

use ndarray::{ArrayD, ArrayView1, ArrayView2, IxDyn, Zip};

use super::rng::Rng;
use crate::load::config::LlamaConfig;
use crate::error::{EngineError, Result};
use crate::load::model::{Model, ModelSource};
use crate::load::tokenizer::Tokenizer;
use crate::load::weights::Checkpoint;

/// The checkpoint name of a per-layer weight: `layer_param(3, "mlp.up_proj")`.
pub fn layer_param(layer: usize, leaf: &str) -> String {
    format!("model.layers.{layer}.{leaf}.weight")
}

pub const EMBED: &str = "model.embed_tokens.weight";
pub const NORM: &str = "model.norm.weight";
pub const LM_HEAD: &str = "lm_head.weight";

/// The per-layer weights, in checkpoint order.
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

/// Every parameter of a Llama model of this config with its shape; no `lm_head` when tied.
pub fn param_shapes(c: &LlamaConfig) -> Vec<(String, Vec<usize>)> {
    let (d, f, v) = (c.d_model(), c.d_mlp(), c.vocab_size);
    let mut out = vec![(EMBED.to_string(), vec![v, d])];
    for l in 0..c.n_layers() {
        for leaf in LAYER_LEAVES {
            let shape = match leaf {
                "input_layernorm" | "post_attention_layernorm" => vec![d],
                "self_attn.q_proj" => vec![c.q_dim(), d],
                "self_attn.k_proj" | "self_attn.v_proj" => vec![c.kv_dim(), d],
                "self_attn.o_proj" => vec![d, c.q_dim()],
                "mlp.gate_proj" | "mlp.up_proj" => vec![f, d],
                _ => vec![d, f],
            };
            out.push((layer_param(l, leaf), shape));
        }
    }
    out.push((NORM.to_string(), vec![d]));
    if !c.tie_word_embeddings {
        out.push((LM_HEAD.to_string(), vec![v, d]));
    }
    out
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params {
    tensors: BTreeMap<String, ArrayD<f32>>,
}

impl Params {
    /// Fresh weights as Hugging Face initializes a Llama: every matrix ~ N(0, std²), every
    /// RMSNorm weight 1. Seeded: the same seed gives the same model.
    pub fn init(c: &LlamaConfig, seed: u64, std: f32) -> Self {
        let mut rng = Rng::derive(seed, 1);
        let tensors = param_shapes(c)
            .into_iter()
            .map(|(name, shape)| {
                let t = if shape.len() == 1 {
                    ArrayD::from_elem(IxDyn(&shape), 1.0)
                } else {
                    ArrayD::from_shape_simple_fn(IxDyn(&shape), || rng.normal() * std)
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

    /// Reads every parameter of `config` from a model folder's safetensors (F16/BF16 → f32).
    pub fn load_dir(dir: &Path, c: &LlamaConfig) -> Result<Self> {
        let ckpt = Checkpoint::open_dir(dir)?;
        let mut tensors = BTreeMap::new();
        let mut wanted = param_shapes(c);
        // Some tied checkpoints still carry an `lm_head.weight`; the model then uses it (as
        // `LlamaWeights::load` does), so it is a parameter of its own.
        if c.tie_word_embeddings && ckpt.contains(LM_HEAD) {
            wanted.push((LM_HEAD.to_string(), vec![c.vocab_size, c.d_model()]));
        }
        for (name, shape) in wanted {
            let (got, values) = ckpt.tensor_f32(&name)?;
            if got != shape {
                return Err(EngineError::Tensor {
                    file: dir.join("model.safetensors"),
                    tensor: name,
                    msg: format!("shape {got:?} does not match {shape:?} expected from config.json"),
                });
            }
            let t = ArrayD::from_shape_vec(IxDyn(&shape), values)
                .map_err(|e| EngineError::Input(format!("{name}: {e}")))?;
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
