//! Before any weight is read: does the checkpoint hold exactly what config.json describes?
//! Every missing, mis-shaped or unreadable tensor is listed in one error; tensors the config
//! does not use and a tied head the checkpoint also stores become warnings. After loading,
//! NaN/inf weights are counted per tensor.

use std::collections::{BTreeMap, BTreeSet};

use safetensors::Dtype;

use crate::load::config::LlamaConfig;
use crate::error::{EngineError, Result};
use crate::load::layout::{LlamaWeights, Named};
use crate::load::weights::Checkpoint;

/// The per-layer tensors, checkpoint names after `model.layers.N.`.
pub const LAYER_TENSORS: [&str; 9] = [
    "input_layernorm.weight",
    "self_attn.q_proj.weight",
    "self_attn.k_proj.weight",
    "self_attn.v_proj.weight",
    "self_attn.o_proj.weight",
    "post_attention_layernorm.weight",
    "mlp.gate_proj.weight",
    "mlp.up_proj.weight",
    "mlp.down_proj.weight",
];

/// Buffers older checkpoints carry that transformers recomputes from config.json.
fn derived(name: &str) -> bool {
    name.ends_with("rotary_emb.inv_freq")
}

/// Every tensor `c` needs with its shape (`lm_head.weight` only when untied).
pub fn expected_tensors(c: &LlamaConfig) -> Vec<(String, Vec<usize>)> {
    let (d, f, v) = (c.d_model(), c.d_mlp(), c.vocab_size);
    let mut out = vec![("model.embed_tokens.weight".to_string(), vec![v, d])];
    for l in 0..c.n_layers() {
        let shapes = [
            vec![d],
            vec![c.q_dim(), d],
            vec![c.kv_dim(), d],
            vec![c.kv_dim(), d],
            vec![d, c.q_dim()],
            vec![d],
            vec![f, d],
            vec![f, d],
            vec![d, f],
        ];
        for (leaf, shape) in LAYER_TENSORS.iter().zip(shapes) {
            out.push((format!("model.layers.{l}.{leaf}"), shape));
        }
    }
    out.push(("model.norm.weight".to_string(), vec![d]));
    if !c.tie_word_embeddings {
        out.push(("lm_head.weight".to_string(), vec![v, d]));
    }
    out
}

/// What loading should do, and what to tell the user about it.
#[derive(Debug, Default)]
pub struct LoadPlan {
    pub warnings: Vec<String>,
}

/// Checks names, shapes and dtypes against the config, listing every problem at once.
pub fn check_checkpoint(c: &LlamaConfig, ckpt: &Checkpoint) -> Result<LoadPlan> {
    let expected = crate::load::families::expected(c, ckpt);
    let mut missing = Vec::new();
    let mut wrong = Vec::new();
    for (name, shape) in &expected {
        match ckpt.meta(name) {
            None => missing.push(name.clone()),
            Some(m) if &m.shape != shape => wrong.push(format!(
                "`{name}` has shape {:?}, config.json expects {shape:?}{}",
                m.shape,
                crate::load::families::shape_hint(c, name).map(|h| format!(" ({h})")).unwrap_or_default()
            )),
            Some(m) if !matches!(m.dtype, Dtype::F32 | Dtype::F16 | Dtype::BF16) => {
                wrong.push(format!("`{name}`: {}", crate::load::weights::unsupported_dtype(m.dtype)))
            }
            Some(_) => {}
        }
    }
    if !missing.is_empty() || !wrong.is_empty() {
        let mut parts = Vec::new();
        if !missing.is_empty() {
            let mut what = format!(
                "{} tensor{} missing: {}",
                missing.len(),
                if missing.len() == 1 { " is" } else { "s are" },
                compact_names(&missing)
            );
            if missing.iter().any(|n| n == "lm_head.weight") {
                what.push_str(" (config.json does not set `tie_word_embeddings: true`)");
            }
            parts.push(what);
        }
        if !wrong.is_empty() {
            parts.push(wrong.join("; "));
        }
        return Err(EngineError::Mismatch {
            path: ckpt.first_path(),
            msg: format!(
                "{}; is this the config.json of these weights? (config: {} layers, d_model {}, \
                 vocab {})",
                parts.join("; "),
                c.n_layers(),
                c.d_model(),
                c.vocab_size
            ),
        });
    }

    let mut warnings = Vec::new();
    let known: BTreeSet<&str> = expected.iter().map(|(n, _)| n.as_str()).collect();
    if c.tie_word_embeddings && ckpt.contains("lm_head.weight") {
        warnings.push(
            "config.json sets `tie_word_embeddings: true`, so the checkpoint's `lm_head.weight` \
             is ignored and the output head is the token embedding (as transformers does)"
                .to_string(),
        );
    }
    let mut unused: Vec<String> = ckpt
        .names()
        .filter(|n| !known.contains(n) && *n != "lm_head.weight" && !derived(n) && !crate::load::families::ignored(n))
        .map(String::from)
        .collect();
    unused.sort();
    if !unused.is_empty() {
        warnings.push(format!(
            "{} checkpoint tensor{} not used by config.json (num_hidden_layers = {}): {}",
            unused.len(),
            if unused.len() == 1 { " is" } else { "s are" },
            c.n_layers(),
            compact_names(&unused)
        ));
    }
    Ok(LoadPlan { warnings })
}

/// Names, with whole layers collapsed: `model.layers.{3-29}.* (all 9 tensors each)`,
/// then partial layers and other names one by one (at most 12 listed, then a count).
pub fn compact_names(names: &[String]) -> String {
    let mut by_layer: BTreeMap<usize, BTreeSet<&str>> = BTreeMap::new();
    let mut others = Vec::new();
    for n in names {
        let layer_leaf = n
            .strip_prefix("model.layers.")
            .and_then(|r| r.split_once('.'))
            .and_then(|(l, leaf)| Some((l.parse::<usize>().ok()?, leaf)));
        match layer_leaf {
            Some((l, leaf)) => {
                by_layer.entry(l).or_default().insert(leaf);
            }
            None => others.push(n.clone()),
        }
    }
    let full: Vec<usize> = by_layer
        .iter()
        .filter(|(_, leaves)| LAYER_TENSORS.iter().all(|t| leaves.contains(t)))
        .map(|(&l, _)| l)
        .collect();
    let mut items = Vec::new();
    if !full.is_empty() {
        items.push(format!(
            "model.layers.{{{}}}.* (every layer tensor)",
            ranges(&full)
        ));
    }
    for (l, leaves) in &by_layer {
        if full.contains(l) {
            for leaf in leaves.iter().filter(|t| !LAYER_TENSORS.contains(t)) {
                items.push(format!("model.layers.{l}.{leaf}"));
            }
        } else {
            items.extend(leaves.iter().map(|leaf| format!("model.layers.{l}.{leaf}")));
        }
    }
    items.extend(others);
    const SHOWN: usize = 12;
    let more = items.len().saturating_sub(SHOWN);
    let mut text = items
        .iter()
        .take(SHOWN)
        .map(|s| crate::error::printable(s))
        .collect::<Vec<_>>()
        .join(", ");
    if more > 0 {
        text.push_str(&format!(" and {more} more"));
    }
    text
}

/// `[1, 2, 3, 7, 9, 10]` → "1-3,7,9-10".
fn ranges(sorted: &[usize]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    out.join(",")
}

/// NaN and ±inf counts of one tensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NonFinite {
    pub tensor: String,
    pub nan: usize,
    pub inf: usize,
}

pub use crate::load::matrix::all_finite;

pub fn count_non_finite(tensor: &str, values: &[f32]) -> Option<NonFinite> {
    if all_finite(values) {
        return None;
    }
    let nan = values.iter().filter(|v| v.is_nan()).count();
    let inf = values.iter().filter(|v| v.is_infinite()).count();
    (nan + inf > 0).then(|| NonFinite {
        tensor: tensor.to_string(),
        nan,
        inf,
    })
}

/// One warning line for the tensors holding NaN/inf.
pub fn non_finite_warning(found: &[NonFinite]) -> Option<String> {
    if found.is_empty() {
        return None;
    }
    let (nan, inf) = found
        .iter()
        .fold((0, 0), |(n, i), f| (n + f.nan, i + f.inf));
    let list: Vec<String> = found
        .iter()
        .take(8)
        .map(|f| format!("{} ({} NaN, {} inf)", f.tensor, f.nan, f.inf))
        .collect();
    let more = found.len().saturating_sub(8);
    let more = if more > 0 {
        format!(" and {more} more tensors")
    } else {
        String::new()
    };
    Some(format!(
        "the weights hold {nan} NaN and {inf} inf values in {} tensor{}: {}{more}; every number \
         computed from them will be NaN or inf, not a result",
        found.len(),
        if found.len() == 1 { "" } else { "s" },
        list.join(", ")
    ))
}

/// Every weight holding NaN or infinities, with the counts.
pub fn non_finite(weights: &LlamaWeights) -> Vec<NonFinite> {
    weights.named()
        .into_iter()
        .filter_map(|(name, t)| match t {
            Named::Vector(v) => count_non_finite(&name, v.as_slice().unwrap_or(&[])),
            Named::Matrix(m) => {
                let (nan, inf) = m.non_finite();
                (nan + inf > 0).then_some(NonFinite { tensor: name, nan, inf })
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_layers_collapse_into_ranges() {
        let mut names: Vec<String> = (2..30)
            .flat_map(|l| LAYER_TENSORS.iter().map(move |t| format!("model.layers.{l}.{t}")))
            .collect();
        names.push("model.layers.0.mlp.up_proj.weight".into());
        names.push("model.norm.weight".into());
        let text = compact_names(&names);
        assert_eq!(
            text,
            "model.layers.{2-29}.* (every layer tensor), model.layers.0.mlp.up_proj.weight, \
             model.norm.weight"
        );
    }

    #[test]
    fn ranges_join_runs() {
        assert_eq!(ranges(&[1, 2, 3, 7, 9, 10]), "1-3,7,9-10");
    }

    #[test]
    fn non_finite_counts() {
        let f = count_non_finite("w", &[1.0, f32::NAN, f32::INFINITY, f32::NEG_INFINITY]);
        assert_eq!(
            f,
            Some(NonFinite {
                tensor: "w".into(),
                nan: 1,
                inf: 2
            })
        );
        assert_eq!(count_non_finite("w", &[0.0, 1.0]), None);
    }
}
