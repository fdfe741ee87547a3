//! The Experiments view in a session file: the open panel, each panel's settings, and the
//! results that reopen without running again — patching grids, direct logit attribution and
//! the head catalog. Scores
//! are written as their IEEE-754 bits (`f32::to_bits`), so they come back bit for bit, NaN
//! (a cell not patched yet) included. Compare results hold whole traces and are not saved:
//! reopening shows their settings, and Run computes them again.

use glassbox_engine::experiments::head_catalog::HeadScores;
use glassbox_engine::experiments::patching::PatchHook;
use glassbox_engine::LlamaConfig;
use serde::{Deserialize, Serialize};

use crate::gui::views::experiments::{ExpMode, ExperimentsView, catalog, patching};
use crate::gui::worker::experiments::{DlaOutput, HeadsOutput, PatchBegun};
use glassbox_engine::experiments::analysis::Ranked;
use glassbox_engine::experiments::attribution::{Attribution, Contribution};

/// Text fields longer than this are not settings.
const MAX_TEXT: usize = 10_000;
/// The catalog probe's half length the view accepts.
const MAX_PROBE: usize = 4096;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedExperiments {
    /// `compare`, `patching`, `attribution` or `catalog`.
    pub mode: String,
    pub patching: SavedPatching,
    pub attribution: SavedAttribution,
    pub catalog: SavedCatalog,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedPatching {
    pub clean: String,
    pub corrupt: String,
    pub answer: String,
    pub wrong: String,
    pub hooks: Vec<String>,
    pub grids: Vec<SavedGrid>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedGrid {
    pub hook: String,
    pub clean: Vec<u32>,
    pub corrupt: Vec<u32>,
    pub answer: u32,
    pub wrong: u32,
    pub clean_ld_bits: u32,
    pub corrupt_ld_bits: u32,
    pub rows: usize,
    pub cols: usize,
    /// `rows × cols`, row-major, as `f32` bits.
    pub score_bits: Vec<u32>,
    pub done: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedAttribution {
    pub target: String,
    pub minus: String,
    #[serde(default)]
    pub result: Option<SavedDla>,
}

/// A direct logit attribution, its numbers as `f32` bits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedDla {
    pub ids: Vec<u32>,
    pub target: u32,
    pub minus: Option<u32>,
    pub logit_bits: u32,
    pub components: Vec<SavedContribution>,
    /// The model's own top 5: `[id, logit bits, prob bits]`.
    pub top: Vec<[u32; 3]>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedContribution {
    pub name: String,
    pub layer: Option<usize>,
    pub head: Option<usize>,
    pub value_bits: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedCatalog {
    pub probe: bool,
    pub probe_len: usize,
    pub seed: u64,
    pub result: Option<SavedHeads>,
}

/// `[n_layers][n_heads]` per score, as `f32` bits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedHeads {
    pub ids: Vec<u32>,
    pub previous_token_bits: Vec<Vec<u32>>,
    pub first_token_bits: Vec<Vec<u32>>,
    pub induction_bits: Vec<Vec<u32>>,
    pub duplicate_bits: Vec<Vec<u32>>,
}

fn mode_name(m: ExpMode) -> &'static str {
    match m {
        ExpMode::Compare => "compare",
        ExpMode::Patching => "patching",
        ExpMode::Attribution => "attribution",
        ExpMode::Catalog => "catalog",
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn floats(v: &[u32]) -> Vec<f32> {
    v.iter().map(|&b| f32::from_bits(b)).collect()
}

fn bits2(v: &[Vec<f32>]) -> Vec<Vec<u32>> {
    v.iter().map(|r| bits(r)).collect()
}

fn floats2(v: &[Vec<u32>]) -> Vec<Vec<f32>> {
    v.iter().map(|r| floats(r)).collect()
}

impl SavedExperiments {
    pub fn capture(x: &ExperimentsView) -> Self {
        let p = &x.patching;
        let grids = p.grids.iter().map(|g| SavedGrid {
            hook: g.begun.hook.name().to_string(),
            clean: g.begun.clean.clone(),
            corrupt: g.begun.corrupt.clone(),
            answer: g.begun.answer,
            wrong: g.begun.wrong,
            clean_ld_bits: g.begun.clean_ld.to_bits(),
            corrupt_ld_bits: g.begun.corrupt_ld.to_bits(),
            rows: g.begun.rows,
            cols: g.begun.cols,
            score_bits: bits(&g.scores),
            done: g.done,
        });
        let c = &x.catalog;
        let heads = c.result.as_ref().map(|r| SavedHeads {
            ids: r.ids.clone(),
            previous_token_bits: bits2(&r.scores.previous_token),
            first_token_bits: bits2(&r.scores.first_token),
            induction_bits: bits2(&r.scores.induction),
            duplicate_bits: bits2(&r.scores.duplicate),
        });
        Self {
            mode: mode_name(x.mode).to_string(),
            patching: SavedPatching {
                clean: p.clean.clone(),
                corrupt: p.corrupt.clone(),
                answer: p.answer.clone(),
                wrong: p.wrong.clone(),
                hooks: p.hooks.iter().map(|h| h.name().to_string()).collect(),
                grids: grids.collect(),
            },
            attribution: SavedAttribution {
                target: x.attribution.target.clone(),
                minus: x.attribution.minus.clone(),
                result: x.attribution.result.as_ref().map(SavedDla::capture),
            },
            catalog: SavedCatalog { probe: c.probe, probe_len: c.probe_len, seed: c.seed, result: heads },
        }
    }

    /// Puts the settings and results into the view; fresh panel states, so no texture
    /// drawn from an earlier result survives.
    pub fn restore(&self, x: &mut ExperimentsView) {
        x.mode = [ExpMode::Compare, ExpMode::Patching, ExpMode::Attribution, ExpMode::Catalog]
            .into_iter()
            .find(|&m| mode_name(m) == self.mode)
            .unwrap_or_default();
        let p = &self.patching;
        let mut patch = patching::PatchState::default();
        patch.clean = p.clean.clone();
        patch.corrupt = p.corrupt.clone();
        patch.answer = p.answer.clone();
        patch.wrong = p.wrong.clone();
        patch.hooks = p.hooks.iter().filter_map(|h| h.parse().ok()).collect();
        patch.grids = p.grids.iter().filter_map(SavedGrid::to_result).collect();
        x.patching = patch;
        x.attribution.target = self.attribution.target.clone();
        x.attribution.minus = self.attribution.minus.clone();
        x.attribution.result = self.attribution.result.as_ref().map(SavedDla::to_output);
        let c = &self.catalog;
        let mut cat = catalog::CatalogState::default();
        cat.probe = c.probe;
        cat.probe_len = c.probe_len;
        cat.seed = c.seed;
        cat.result = c.result.as_ref().map(SavedHeads::to_output);
        x.catalog = cat;
    }

    pub fn check_plain(&self) -> Result<(), String> {
        if !["compare", "patching", "attribution", "catalog"].contains(&self.mode.as_str()) {
            return Err(format!("experiments: `{}` is not a panel (compare, patching, attribution, catalog)", self.mode));
        }
        let p = &self.patching;
        let texts = [&p.clean, &p.corrupt, &p.answer, &p.wrong, &self.attribution.target, &self.attribution.minus];
        if texts.iter().any(|t| t.chars().count() > MAX_TEXT) {
            return Err(format!("experiments: a text field is over {MAX_TEXT} characters"));
        }
        for h in p.hooks.iter().chain(p.grids.iter().map(|g| &g.hook)) {
            h.parse::<PatchHook>().map_err(|e| format!("experiments: {e}"))?;
        }
        if self.catalog.probe_len > MAX_PROBE {
            return Err(format!("experiments: probe length {} is over {MAX_PROBE}", self.catalog.probe_len));
        }
        Ok(())
    }

    /// Grid and score shapes against the model; token ids within its vocabulary.
    pub fn check_against(&self, c: &LlamaConfig) -> Result<(), String> {
        let (layers, heads, vocab) = (c.n_layers(), c.n_heads(), c.vocab_size);
        let max_cols = c.max_position_embeddings.max(heads);
        for g in &self.patching.grids {
            let ids = g.clean.iter().chain(&g.corrupt).chain([&g.answer, &g.wrong]);
            if ids.into_iter().any(|&id| id as usize >= vocab) {
                return Err(format!("experiments: a patching token id is beyond the vocabulary ({vocab})"));
            }
            if g.rows != layers || g.cols > max_cols || g.score_bits.len() != g.rows * g.cols || g.done > g.score_bits.len() {
                return Err(format!("experiments: a {}×{} patching grid does not fit a model of {layers} layers", g.rows, g.cols));
            }
        }
        if let Some(d) = &self.attribution.result {
            d.check_against(c)?;
        }
        if let Some(r) = &self.catalog.result {
            if r.ids.iter().any(|&id| id as usize >= vocab) {
                return Err(format!("experiments: a head-catalog token id is beyond the vocabulary ({vocab})"));
            }
            let all = [&r.previous_token_bits, &r.first_token_bits, &r.induction_bits, &r.duplicate_bits];
            if all.iter().any(|m| m.len() != layers || m.iter().any(|row| row.len() != heads)) {
                return Err(format!("experiments: head-catalog scores are not {layers} layers × {heads} heads"));
            }
        }
        Ok(())
    }
}

impl SavedGrid {
    fn to_result(&self) -> Option<patching::GridResult> {
        let begun = PatchBegun {
            hook: self.hook.parse().ok()?,
            clean: self.clean.clone(),
            corrupt: self.corrupt.clone(),
            answer: self.answer,
            wrong: self.wrong,
            clean_ld: f32::from_bits(self.clean_ld_bits),
            corrupt_ld: f32::from_bits(self.corrupt_ld_bits),
            rows: self.rows,
            cols: self.cols,
        };
        // `finished` (passes, seconds) described the run that made it; none ran here.
        Some(patching::GridResult { begun, scores: floats(&self.score_bits), done: self.done, finished: None })
    }
}

impl SavedHeads {
    fn to_output(&self) -> HeadsOutput {
        let scores = HeadScores {
            previous_token: floats2(&self.previous_token_bits),
            first_token: floats2(&self.first_token_bits),
            induction: floats2(&self.induction_bits),
            duplicate: floats2(&self.duplicate_bits),
        };
        HeadsOutput { ids: self.ids.clone(), scores }
    }
}

impl SavedDla {
    fn capture(d: &DlaOutput) -> Self {
        let a = &d.attribution;
        let components = a.components.iter().map(|c| SavedContribution { name: c.name.clone(), layer: c.layer, head: c.head, value_bits: c.value.to_bits() });
        Self {
            ids: d.ids.clone(),
            target: a.target,
            minus: a.minus,
            logit_bits: a.logit.to_bits(),
            components: components.collect(),
            top: d.top.iter().map(|r| [r.id, r.logit.to_bits(), r.prob.to_bits()]).collect(),
        }
    }

    fn to_output(&self) -> DlaOutput {
        let components = self.components.iter().map(|c| Contribution { name: c.name.clone(), layer: c.layer, head: c.head, value: f32::from_bits(c.value_bits) });
        let attribution = Attribution { target: self.target, minus: self.minus, logit: f32::from_bits(self.logit_bits), components: components.collect() };
        let top = self.top.iter().map(|&[id, logit, prob]| Ranked { id, logit: f32::from_bits(logit), prob: f32::from_bits(prob) }).collect();
        DlaOutput { ids: self.ids.clone(), attribution, top }
    }

    /// Ids in the vocabulary; components name layers and heads the model has, and not more
    /// of them than it could have (embeddings, heads and MLPs, a few biases).
    fn check_against(&self, c: &LlamaConfig) -> Result<(), String> {
        let (layers, heads, vocab) = (c.n_layers(), c.n_heads(), c.vocab_size);
        let ids = self.ids.iter().chain([&self.target]).chain(&self.minus).chain(self.top.iter().map(|t| &t[0]));
        if ids.into_iter().any(|&id| id as usize >= vocab) {
            return Err(format!("experiments: an attribution token id is beyond the vocabulary ({vocab})"));
        }
        let most = layers * (heads + 2) + 8;
        let bad = |x: &SavedContribution| x.layer.is_some_and(|l| l >= layers) || x.head.is_some_and(|h| h >= heads) || x.name.chars().count() > 64;
        if self.components.len() > most || self.components.iter().any(bad) || self.top.len() > 100 {
            return Err(format!("experiments: the attribution does not fit a model of {layers} layers × {heads} heads"));
        }
        Ok(())
    }
}
