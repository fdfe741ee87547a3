//! `article`: the Transformer the article draws (`article`: post-sublayer LayerNorm, ReLU,
//! learned positions added to the embedding) against Llama's recipe and the variants that
//! change one of those at a time, on `text` with the same budget; then a learning-rate
//! sweep of `llama` and `article` (×1, ×4, ×16 the preset's peak), where post-norm's
//! instability shows.

use super::{Experiment, ExperimentOptions, ExperimentReport, FinalEval, SweepPoint, preset_trainer, train_all};
use crate::error::Result;
use crate::train::presets::Preset;
use crate::train::recipes::Recipe;
use crate::train::trainer::{Event, Trainer};

pub const RECIPES: [Recipe; 5] = [Recipe::Article, Recipe::Llama, Recipe::LlamaPostnorm, Recipe::LlamaRelu, Recipe::LlamaLearned];
pub const SWEEP_RECIPES: [Recipe; 2] = [Recipe::Llama, Recipe::Article];
pub const LR_MULTIPLIERS: [f32; 3] = [1.0, 4.0, 16.0];
pub const DEFAULT_STEPS: usize = 150;

/// The sweep's runs are shorter: a third of the main runs' steps (at least 2).
pub fn sweep_steps(steps: usize) -> usize {
    (steps / 3).max(2)
}

pub fn run(options: &ExperimentOptions, on_event: &mut dyn FnMut(&str, Event<'_>)) -> Result<ExperimentReport> {
    let steps = options.steps.unwrap_or(DEFAULT_STEPS);
    let trainers = RECIPES
        .iter()
        .map(|&r| Ok((r.name().to_string(), preset_trainer(Preset::Text, r, steps, options, true)?)))
        .collect::<Result<Vec<_>>>()?;
    let measure = |t: &Trainer| -> Result<FinalEval> {
        let e = t.evaluate()?;
        Ok(FinalEval::from([("held_out_loss".to_string(), f64::from(e.loss))]))
    };
    let (compare, final_evals) = train_all(options, Preset::Text.name(), trainers, &measure, on_event)?;
    let lr_sweep = sweep(options, sweep_steps(steps), on_event)?;
    Ok(ExperimentReport { experiment: Experiment::Article, compare, final_evals, lr_sweep: Some(lr_sweep) })
}

/// Each sweep recipe at each multiple of the preset's peak learning rate (and floor), no
/// checkpoints and no evaluations: only the training loss.
fn sweep(options: &ExperimentOptions, steps: usize, on_event: &mut dyn FnMut(&str, Event<'_>)) -> Result<Vec<SweepPoint>> {
    let mut out = Vec::new();
    for r in SWEEP_RECIPES {
        for m in LR_MULTIPLIERS {
            let mut t = preset_trainer(Preset::Text, r, steps, options, false)?;
            t.spec.schedule.peak *= m;
            t.spec.schedule.min_lr *= m;
            t.spec.schedule.warmup = (steps / 10).max(1);
            let name = format!("{}@{}x", r.name(), m);
            let mut losses = Vec::new();
            while !t.done() {
                let rep = t.train_step()?;
                on_event(&name, Event::Step(&rep));
                losses.push(rep.loss);
            }
            let (first, last) = (losses.first().copied().unwrap_or(f32::NAN), losses.last().copied().unwrap_or(f32::NAN));
            let diverged = losses.iter().any(|l| !l.is_finite()) || last > first;
            out.push(SweepPoint { recipe: r.name().into(), peak_lr: t.spec.schedule.peak, final_loss: last, diverged });
        }
    }
    Ok(out)
}
