//! The loaded model: config, f32 weights under their checkpoint names, tokenizer.

use std::path::{Path, PathBuf};

use crate::load::config::LlamaConfig;
use crate::load::longrope::Rope;
use crate::error::{EngineError, Result};
use crate::load::load_check::{check_checkpoint, non_finite, non_finite_warning};
pub use crate::load::layout::{Attention, AttnBias, DecoderLayer, LearnedPositions, LlamaWeights, Mlp, MlpBias, MlmHead, Named};
use crate::load::tokenizer::Tokenizer;
use crate::load::weights::Checkpoint;

/// Where the model came from, for the status bar and the quantization lesson.
#[derive(Debug, Clone)]
pub struct ModelSource {
    pub dir: PathBuf,
    pub name: String,
    /// e.g. "Q4_1 weights computed in f32"; from the converter's `glassbox_source.json`.
    pub weights_note: String,
}

/// How a model's weight matrices are held: as the GGUF stores them (blocks computed in place)
/// or as f32 (a GGUF converted once into the cache; safetensors in their stored type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WeightsMode {
    Native,
    #[default]
    F32,
}

impl WeightsMode {
    /// Native for a GGUF file, F32 otherwise (a folder).
    pub fn default_for(path: &Path) -> WeightsMode {
        if crate::load::discover::is_gguf_file(path) { WeightsMode::Native } else { WeightsMode::F32 }
    }

    /// "native" or "f32", as the `--weights` flag and `bench --json` spell it.
    pub fn name(self) -> &'static str {
        match self {
            WeightsMode::Native => "native",
            WeightsMode::F32 => "f32",
        }
    }

    pub fn parse(s: &str) -> Option<WeightsMode> {
        match s {
            "native" => Some(WeightsMode::Native),
            "f32" => Some(WeightsMode::F32),
            _ => None,
        }
    }
}

pub struct Model {
    pub config: LlamaConfig,
    pub weights: LlamaWeights,
    pub tokenizer: Option<Tokenizer>,
    pub source: ModelSource,
    /// RoPE inverse frequencies, computed once (llama3 scaling applied).
    pub inv_freq: Vec<f32>,
    /// Those of the sliding-window layers where their θ differs (Gemma 3).
    pub inv_freq_local: Option<Vec<f32>>,
    /// longrope (Phi-3 128k): the long table and when it replaces `inv_freq`.
    pub longrope: Option<crate::load::longrope::LongRope>,
    /// The family's description, read once from the config.
    pub arch: crate::load::arch::Arch,
    /// What loading found worth telling the user (NaN/inf weights, ignored tensors, ...):
    /// the CLI prints them, the GUI shows them as notices.
    pub warnings: Vec<String>,
}

impl Model {
    /// A copy of this model with other weights (e.g. re-quantized), described by `note`.
    /// The copy has no tokenizer: it runs the same token ids as this one.
    pub fn with_weights(&self, weights: LlamaWeights, note: String) -> Model {
        Model {
            config: self.config.clone(),
            weights,
            tokenizer: None,
            source: ModelSource { weights_note: note, ..self.source.clone() },
            inv_freq: self.inv_freq.clone(),
            inv_freq_local: self.inv_freq_local.clone(),
            longrope: self.longrope.clone(),
            arch: self.arch.clone(),
            warnings: self.warnings.clone(),
        }
    }

    /// Loads an HF Llama-family folder (config.json + safetensors [+ tokenizer.json]), or a
    /// `.gguf` file as downloaded ([`WeightsMode::default_for`]).
    pub fn load(path: &Path) -> Result<Self> {
        Self::load_with(path, WeightsMode::default_for(path))
    }

    /// Loads `path` with its matrices held as `mode` says: a GGUF natively (blocks in place)
    /// or converted once into the cache and loaded as f32; a folder natively from the `.gguf`
    /// kept beside its converted files (`glassbox fetch` keeps it), or as it is.
    pub fn load_with(path: &Path, mode: WeightsMode) -> Result<Self> {
        let is_gguf = crate::load::discover::is_gguf_file(path);
        match mode {
            WeightsMode::Native if is_gguf => Self::load_native(path, None),
            WeightsMode::Native => Self::load_native(&gguf_beside(path)?, Some(path)),
            WeightsMode::F32 => Self::load_f32(path, is_gguf),
        }
    }

    /// A GGUF as downloaded: see `load/gguf/native.rs`. `folder`: the model folder it was
    /// kept in, which names the model (as its f32 load does).
    fn load_native(gguf: &Path, folder: Option<&Path>) -> Result<Self> {
        let parts = crate::load::gguf::native::open_native(gguf)?;
        let config = parts.config;
        let plan = check_checkpoint(&config, &parts.checkpoint)?;
        let weights = crate::load::families::load(&config, &parts.checkpoint)?;
        let mut warnings = plan.warnings;
        warnings.extend(non_finite_warning(&non_finite(&weights)));
        if let Some(t) = &parts.tokenizer {
            warnings.extend(t.warnings().iter().cloned());
        }
        let source = match folder {
            Some(dir) => ModelSource {
                name: dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
                weights_note: parts.weights_note,
                dir: dir.to_path_buf(),
            },
            None => ModelSource {
                name: gguf.file_stem().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
                weights_note: parts.weights_note,
                dir: gguf.parent().map(Path::to_path_buf).unwrap_or_default(),
            },
        };
        let (inv_freq, inv_freq_local, longrope, arch) = (config.inv_freq(), config.inv_freq_local(), config.longrope(), config.arch());
        Ok(Self { config, weights, tokenizer: parts.tokenizer, source, inv_freq, inv_freq_local, longrope, arch, warnings })
    }

    fn load_f32(path: &Path, is_gguf: bool) -> Result<Self> {
        // By extension or by magic: Ollama keeps its GGUFs as `blobs/sha256-…`.
        let dir = if is_gguf {
            crate::load::fetch::ensure_converted(path, &mut |_| {})?
        } else {
            path.to_path_buf()
        };
        if !dir.is_dir() {
            return Err(EngineError::Input(format!(
                "{}: not a model folder or .gguf file (run `glassbox fetch`, or pass --model DIR)",
                dir.display()
            )));
        }
        crate::load::fetch::check_cached_sizes(&dir)?;
        let config = LlamaConfig::from_file(&dir.join("config.json"))?;
        // The tokenizer and the checkpoint's header first: both fail fast, before hundreds
        // of megabytes of weights are read.
        let tokenizer = Tokenizer::load_dir(&dir, config.vocab_size)?;
        let ckpt = Checkpoint::open_dir(&dir)?;
        let plan = check_checkpoint(&config, &ckpt)?;
        let weights = crate::load::families::load(&config, &ckpt)?;
        let mut warnings = plan.warnings;
        warnings.extend(non_finite_warning(&non_finite(&weights)));
        if let Some(t) = &tokenizer {
            warnings.extend(t.warnings().iter().cloned());
        }
        let source = ModelSource {
            name: dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            weights_note: read_weights_note(&dir, &config),
            dir,
        };
        let (inv_freq, inv_freq_local, longrope, arch) = (config.inv_freq(), config.inv_freq_local(), config.longrope(), config.arch());
        Ok(Self {
            config,
            weights,
            tokenizer,
            source,
            inv_freq,
            inv_freq_local,
            longrope,
            arch,
            warnings,
        })
    }

    /// Whether the matrices are the GGUF's blocks (native) or f32, read off the matrices
    /// themselves (a copy with other weights, such as the f32 reference, says what it holds).
    pub fn weights_mode(&self) -> WeightsMode {
        let w = &self.weights;
        let layers = w.layers.iter().flat_map(|l| {
            let (a, m) = (&l.self_attn, &l.mlp);
            [&a.q_proj, &a.k_proj, &a.v_proj, &a.o_proj, &m.gate_proj, &m.down_proj].into_iter().chain(m.up_proj.as_ref())
        });
        let blocks = layers.chain([&w.embed_tokens]).chain(w.lm_head.as_ref()).any(|m| m.quant_type().is_some());
        if blocks { WeightsMode::Native } else { WeightsMode::F32 }
    }

    /// Bytes the weights take where they lie: each matrix in its stored type (mapped or
    /// owned, a tied head once), each vector in f32.
    pub fn weights_resident_bytes(&self) -> usize {
        self.weights
            .named()
            .into_iter()
            .map(|(_, t)| match t {
                Named::Matrix(m) => m.bytes(),
                Named::Vector(v) => v.len() * 4,
            })
            .sum()
    }

    /// The RoPE block `layer` applies in a pass over positions `..end` (exclusive): the
    /// sliding layers' own θ (Gemma 3), or the global table, which longrope picks by `end`.
    pub fn rope_of(&self, layer: usize, end: usize) -> Rope<'_> {
        match (&self.inv_freq_local, self.arch.layers.get(layer)) {
            (Some(local), Some(l)) if l.local_rope => Rope::plain(local),
            _ => self.rope_global(end),
        }
    }

    /// The global layers' RoPE in a pass over positions `..end`.
    pub fn rope_global(&self, end: usize) -> Rope<'_> {
        crate::load::longrope::pick(&self.inv_freq, self.longrope.as_ref(), end)
    }

    /// What loading found worth telling the user; empty for a healthy model.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

impl Model {
    /// A model from named f32 tensors held in memory under the canonical names
    /// (`load/layout_named.rs`: `model.layers.0.self_attn.q_proj.weight`, …), as a trainer holds
    /// its parameters, for any family: the config's `Arch` says which tensors there are.
    pub fn from_tensors(
        config: LlamaConfig,
        tensors: &dyn Fn(&str) -> Option<ndarray::ArrayD<f32>>,
        tokenizer: Option<Tokenizer>,
        source: ModelSource,
    ) -> Result<Self> {
        let weights = LlamaWeights::from_named(&config, tensors)?;
        let (inv_freq, inv_freq_local, longrope, arch) = (config.inv_freq(), config.inv_freq_local(), config.longrope(), config.arch());
        Ok(Self {
            config,
            weights,
            tokenizer,
            source,
            inv_freq,
            inv_freq_local,
            longrope,
            arch,
            warnings: Vec::new(),
        })
    }
}

/// The `.gguf` a model folder keeps beside its converted files (the one `glassbox_source.json`
/// names, or the only one there).
fn gguf_beside(dir: &Path) -> Result<PathBuf> {
    let named = std::fs::read_to_string(dir.join(crate::load::gguf::SOURCE_FILE))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v.get("source").and_then(|n| n.as_str()).map(|n| dir.join(n)))
        .filter(|p| p.is_file());
    let any = || {
        std::fs::read_dir(dir).ok()?.filter_map(|e| e.ok().map(|e| e.path())).find(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("gguf")))
    };
    named.or_else(any).ok_or_else(|| {
        EngineError::Input(format!(
            "{}: no .gguf beside the converted weights to load natively (run `glassbox fetch` to keep it there, or pass --weights f32)",
            dir.display()
        ))
    })
}

fn read_weights_note(dir: &Path, config: &LlamaConfig) -> String {
    let from_converter = std::fs::read_to_string(dir.join(crate::load::gguf::SOURCE_FILE))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v.get("weights_note").and_then(|n| n.as_str()).map(String::from));
    from_converter.unwrap_or_else(|| {
        let dtype = config
            .dtype
            .as_deref()
            .or(config.torch_dtype.as_deref())
            .unwrap_or("float32");
        format!("{dtype} weights computed in f32")
    })
}
