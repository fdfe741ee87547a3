//! Lessons (`lessons/<lang>/NN-slug.md`, format in lessons/README.md): TOML front matter
//! parsed with `toml`, a CommonMark body rendered with egui_commonmark, the binding from a
//! step to the lesson that explains it, and the try-it actions, executed in the order the
//! README fixes.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use glassbox_engine::{LlamaConfig, Step};
use serde::Deserialize;

use super::i18n::Lang;
use super::session::Session;
use super::views::experiments::ExperimentSpec;
use super::views::training::{PrecisionMode, TrainRequest};
use super::views::{ViewId, step_kind};
use glassbox_engine::Precision;
use glassbox_engine::train::Preset;
use glassbox_engine::article::tasks::TaskKind;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Front {
    pub id: String,
    pub title: String,
    pub steps: Vec<String>,
    pub hooks: Vec<String>,
    pub view: String,
    /// The model the lesson is about (`lesson_numbers::MODELS`; absent: SmolLM2). Its
    /// `{{name}}` numbers and `[facts]` are that model's.
    #[serde(default)]
    pub model: Option<String>,
    /// Screenshots of the app that show what the lesson explains, by name without the
    /// language (`06-attention-head` → `screenshots/en-06-attention-head.png`): for readers
    /// of the lesson outside the app. A test checks each exists in both languages.
    #[serde(default)]
    pub screenshots: Vec<String>,
    #[serde(default)]
    pub facts: Option<toml::Table>,
    pub actions: Vec<Action>,
    /// The exercises at the lesson's end (two or three; answers computed, never typed).
    #[serde(default)]
    pub questions: Vec<Question>,
}

/// One exercise: `text` is asked (its `{{numbers}}` filled in like the body's), `answer` is
/// a template of `{{names}}` the app fills from the model's config and the current pass
/// (`lesson_answers`), hidden until the student asks for it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Question {
    pub text: String,
    pub answer: String,
}

/// One try-it button. Absent fields keep the app's current values, except `ablate_heads`
/// (absent = none) and `precision` (absent = f32), so an experiment never leaks.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Action {
    pub label: String,
    pub prompt: Option<String>,
    pub chat: Option<bool>,
    pub goto: Option<String>,
    pub layer: Option<usize>,
    pub head: Option<usize>,
    pub position: Option<usize>,
    pub temperature: Option<f32>,
    pub top_k: Option<usize>,
    pub top_p: Option<f32>,
    pub ablate_heads: Option<Vec<[usize; 2]>>,
    pub precision: Option<String>,
    pub generate: Option<usize>,
    pub task: Option<String>,
    /// A sub-panel to open (`augment`, `graph`, `activations`, …; see `View::modes`); its
    /// view opens with it.
    pub mode: Option<String>,
    /// Training: start a fresh run of this preset (`"induction"` or `"text"`).
    pub train: Option<String>,
    /// With `train`: pause after this many steps (absent: run to the end).
    pub train_steps: Option<usize>,
    /// With `train`: data-parallel workers (1, 2, 4, 8 or 16; absent: 1).
    pub workers: Option<usize>,
    /// With `train`: `"f32"`, `"bf16"` or `"both"` (the bf16 loss over the f32 one).
    pub train_precision: Option<String>,
    /// With `train`: then lay one training step open (step-through).
    pub inspect: Option<bool>,
    /// Run an experiment (compare, ladder, patch, dla, heads) on the prompt and open its
    /// panel in the Experiments view.
    pub experiment: Option<ExperimentSpec>,
    /// First open this model (a `lesson_numbers::MODELS` id whose weights are in Glassbox's
    /// cache) unless it is the loaded one; the rest of the action runs on it.
    pub model: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Lesson {
    pub front: Front,
    pub body: String,
}

impl Lesson {
    pub fn id(&self) -> &str {
        &self.front.id
    }

    pub fn view(&self) -> Option<ViewId> {
        ViewId::from_id(&self.front.view)
    }

    pub fn explains(&self, step: Step) -> bool {
        self.front.steps.iter().any(|s| s == step_kind(step))
    }
}

/// Splits `+++ front +++ body` and parses the front matter.
pub fn parse(text: &str, file: &Path) -> Result<Lesson> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let rest = text
        .strip_prefix("+++\n")
        .with_context(|| format!("{}: line 1 must be exactly `+++`", file.display()))?;
    let end = rest
        .find("\n+++\n")
        .or_else(|| rest.ends_with("\n+++").then(|| rest.len() - 4))
        .with_context(|| format!("{}: no closing `+++` line", file.display()))?;
    let front: Front = toml::from_str(&rest[..end + 1])
        .with_context(|| format!("{}: front matter", file.display()))?;
    let body = rest.get(end + 5..).unwrap_or("").to_string();
    let stem = file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    if front.id != stem {
        bail!(
            "{}: id `{}` does not match the file name",
            file.display(),
            front.id
        );
    }
    Ok(Lesson { front, body })
}

/// Both languages' lessons, sorted by file name.
#[derive(Default)]
pub struct Library {
    pub en: Vec<Lesson>,
    pub zh: Vec<Lesson>,
    /// Files that did not parse (shown in the panel, never a crash).
    pub errors: Vec<String>,
}

impl Library {
    /// `$GLASSBOX_LESSONS`, else `lessons/` next to the binary or up to three folders
    /// above it (target/release → repository), else the source tree's.
    pub fn find_dir() -> Option<PathBuf> {
        if let Some(dir) = std::env::var_os("GLASSBOX_LESSONS").filter(|v| !v.is_empty()) {
            return Some(PathBuf::from(dir));
        }
        let mut candidates = Vec::new();
        if let Ok(exe) = std::env::current_exe() {
            for dir in exe.ancestors().skip(1).take(4) {
                candidates.push(dir.join("lessons"));
            }
        }
        candidates.push(PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../lessons"
        )));
        candidates.into_iter().find(|d| d.join("en").is_dir())
    }

    pub fn load(dir: Option<PathBuf>) -> Self {
        let mut lib = Library::default();
        let Some(dir) = dir else {
            lib.errors
                .push("no lessons folder found (set GLASSBOX_LESSONS)".into());
            return lib;
        };
        if !Lang::ALL.iter().any(|l| dir.join(l.code()).is_dir()) {
            let from_env = std::env::var_os("GLASSBOX_LESSONS").is_some_and(|v| !v.is_empty());
            lib.errors.push(format!(
                "no lessons in {} (it has no en/ or zh/ folder){}",
                dir.display(),
                if from_env {
                    "; check GLASSBOX_LESSONS, or unset it to use the bundled lessons"
                } else {
                    ""
                }
            ));
            return lib;
        }
        for lang in Lang::ALL {
            let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join(lang.code()))
                .map(|rd| {
                    rd.filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| p.extension().is_some_and(|e| e == "md"))
                        .collect()
                })
                .unwrap_or_default();
            files.sort();
            for f in files {
                let parsed = std::fs::read_to_string(&f)
                    .map_err(anyhow::Error::from)
                    .and_then(|t| parse(&t, &f));
                match parsed {
                    Ok(l) => match lang {
                        Lang::En => lib.en.push(l),
                        Lang::Zh => lib.zh.push(l),
                    },
                    Err(e) => lib.errors.push(format!("{e:#}")),
                }
            }
        }
        lib
    }

    pub fn lessons(&self, lang: Lang) -> &[Lesson] {
        match lang {
            Lang::En => &self.en,
            Lang::Zh => &self.zh,
        }
    }

    pub fn get(&self, lang: Lang, id: &str) -> Option<&Lesson> {
        self.lessons(lang).iter().find(|l| l.id() == id)
    }

    /// The lesson in `lang`, else in the other language (`true`: a fallback, say so).
    pub fn get_or_other(&self, lang: Lang, id: &str) -> Option<(&Lesson, bool)> {
        self.get(lang, id).map(|l| (l, false)).or_else(|| {
            let other = Lang::ALL.into_iter().find(|&l| l != lang)?;
            self.get(other, id).map(|l| (l, true))
        })
    }

    /// The lesson for `step`: the open one if it explains it; else one that explains it
    /// and opens the step's own view (softmax → the attention lesson, not GQA); else the
    /// first that explains it.
    pub fn for_step(&self, lang: Lang, step: Step, open: Option<&str>) -> Option<&Lesson> {
        let all = self.lessons(lang);
        if let Some(l) = open
            .and_then(|id| all.iter().find(|l| l.id() == id))
            .filter(|l| l.explains(step))
        {
            return Some(l);
        }
        let view = ViewId::for_step(step);
        all.iter()
            .find(|l| l.explains(step) && view.is_some() && l.view() == view)
            .or_else(|| all.iter().find(|l| l.explains(step)))
    }
}

fn parse_precision(p: Option<&str>) -> Result<Precision, String> {
    match p.unwrap_or("f32") {
        "f32" => Ok(Precision::F32),
        "f16" => Ok(Precision::F16),
        other => Err(format!("unknown precision `{other}`")),
    }
}

/// The lesson's `[facts]` that the loaded model does not share (e.g. the fixture has 2
/// layers, SmolLM2 30): the panel says so, because the text states them.
pub fn facts_mismatch(front: &Front, c: &LlamaConfig) -> Vec<Mismatch> {
    let Some(facts) = &front.facts else {
        return Vec::new();
    };
    let actual = |key: &str| -> Option<f64> {
        Some(match key {
            "n_layers" => c.n_layers() as f64,
            "d_model" => c.d_model() as f64,
            "n_heads" => c.n_heads() as f64,
            "n_kv_heads" => c.n_kv_heads() as f64,
            "d_head" => c.d_head() as f64,
            "d_mlp" => c.d_mlp() as f64,
            "vocab_size" => c.vocab_size as f64,
            "rope_theta" => c.rope_theta(),
            "rms_norm_eps" => f64::from(c.eps()),
            "max_position_embeddings" => c.max_position_embeddings as f64,
            "tied_embeddings" => f64::from(u8::from(c.tie_word_embeddings)),
            "gqa_group" => c.group_size() as f64,
            "n_params_millions" => c.n_params() as f64 / 1e6,
            _ => return None,
        })
    };
    facts
        .iter()
        .filter_map(|(k, v)| {
            let stated = v
                .as_float()
                .or_else(|| v.as_integer().map(|i| i as f64))
                .or_else(|| v.as_bool().map(|b| f64::from(u8::from(b))))?;
            let real = actual(k)?;
            // A parameter count is stated rounded ("135M"); every other fact is exact.
            let tolerance = if k == "n_params_millions" { 1e-2 } else { 1e-6 };
            let off = (stated - real).abs() > tolerance * stated.abs().max(real.abs()).max(1e-30);
            off.then(|| Mismatch { key: k.clone(), stated, real })
        })
        .collect()
}

/// A `[facts]` number the loaded model does not have.
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    pub key: String,
    pub stated: f64,
    pub real: f64,
}

impl Mismatch {
    /// `d_model = 576 (this model: 64)`, in the UI's language.
    pub fn text(&self, lang: Lang) -> String {
        let Self { key, stated, real } = self;
        lang.tf(format!("{key} = {stated} (this model: {real})"), format!("{key} = {stated}（本模型：{real}）"))
    }
}

/// The training run an action asks for, if any.
pub fn train_request(a: &Action) -> Result<Option<TrainRequest>, String> {
    let Some(name) = a.train.as_deref() else {
        let stray = a.train_steps.is_some() || a.workers.is_some() || a.train_precision.is_some() || a.inspect.is_some();
        return if stray { Err("train_steps, workers, train_precision and inspect need `train`".into()) } else { Ok(None) };
    };
    let preset = Preset::from_name(name).ok_or_else(|| format!("unknown training preset `{name}` (induction, text)"))?;
    let workers = a.workers.unwrap_or(1);
    if ![1, 2, 4, 8, 16].contains(&workers) {
        return Err(format!("workers {workers}: must be 1, 2, 4, 8 or 16 (a divisor of the batch)"));
    }
    let precision = match a.train_precision.as_deref().unwrap_or("f32") {
        "f32" => PrecisionMode::F32,
        "bf16" => PrecisionMode::Bf16,
        "both" => PrecisionMode::Both,
        other => return Err(format!("unknown train_precision `{other}` (f32, bf16, both)")),
    };
    Ok(Some(TrainRequest {
        preset,
        workers,
        precision,
        steps: a.train_steps,
        inspect: a.inspect.unwrap_or(false),
    }))
}

/// Checks an action against the lesson format and the model (empty = fine).
pub fn check_action(a: &Action, c: &LlamaConfig) -> Vec<String> {
    let mut errs = Vec::new();
    let n = c.n_layers();
    let goto_layer = match a.goto.as_deref().map(str::parse::<Step>) {
        Some(Ok(s)) => {
            if s.layer().is_some_and(|l| l >= n) {
                errs.push(format!("goto `{s}` is past the model's {n} layers"));
            }
            s.layer()
        }
        Some(Err(e)) => {
            errs.push(e.to_string());
            None
        }
        None => None,
    };
    if let Some(l) = a.layer {
        if l >= n {
            errs.push(format!("layer {l} ≥ {n}"));
        }
        if goto_layer.is_some_and(|g| g != l) {
            errs.push(format!("layer {l} disagrees with goto"));
        }
    }
    if a.head.is_some_and(|h| h >= c.n_heads()) {
        errs.push("head out of range".into());
    }
    for &[l, h] in a.ablate_heads.iter().flatten() {
        if l >= n || h >= c.n_heads() {
            errs.push(format!("ablate_heads [{l}, {h}] out of range"));
        }
    }
    if let Err(e) = parse_precision(a.precision.as_deref()) {
        errs.push(e);
    }
    if a.task
        .as_deref()
        .is_some_and(|t| TaskKind::from_name(t).is_none())
    {
        errs.push("unknown task".into());
    }
    if a.temperature.is_some_and(|t| t < 0.0) || a.top_p.is_some_and(|p| !(p > 0.0 && p <= 1.0)) {
        errs.push("sampling value out of range".into());
    }
    if a.generate.is_some_and(|g| !(1..=256).contains(&g)) {
        errs.push("generate must be 1..=256".into());
    }
    if a.chat.is_some() && a.prompt.is_none() {
        errs.push("chat without prompt".into());
    }
    if let Some(m) = &a.mode
        && ViewId::for_mode(m).is_none()
    {
        errs.push(format!("unknown mode `{m}`"));
    }
    if a.mode.is_some() && a.task.is_some() {
        errs.push("mode and task both open a view".into());
    }
    if let Err(e) = train_request(a) {
        errs.push(e);
    }
    if let Some(m) = &a.model
        && !super::lesson_numbers::MODELS.iter().any(|(id, _)| id == m)
    {
        errs.push(format!("unknown model `{m}`"));
    }
    if let Some(x) = &a.experiment {
        errs.extend(x.check(c));
        if a.mode.is_some() || a.task.is_some() || a.train.is_some() {
            errs.push("experiment opens its own view: no mode, task or train beside it".into());
        }
    }
    errs
}

/// What running an action asks of the app beyond the session.
#[derive(Debug, Default, PartialEq)]
pub struct ActionOutcome {
    /// Open the Tasks view on this task with this input.
    pub task: Option<(TaskKind, Option<String>)>,
    /// Open this sub-panel (and its view).
    pub mode: Option<String>,
    /// Start this training run in the Training view.
    pub train: Option<TrainRequest>,
    /// Run this experiment in the Experiments view.
    pub experiment: Option<ExperimentSpec>,
}

/// Runs `a` in the README's order: (1) precision and ablation, (2) prompt, (3) sampling,
/// (4) generation, (5) task, training or experiment (the caller starts them from the
/// outcome), (6) cursor and selection.
pub fn run_action(a: &Action, s: &mut Session) -> ActionOutcome {
    let mut out = ActionOutcome::default();
    let task = a.task.as_deref().and_then(TaskKind::from_name);
    // (1) Absent means "off": an ablation or f16 run never leaks into the next action.
    let precision = parse_precision(a.precision.as_deref()).unwrap_or(Precision::F32);
    let ablate: Vec<(usize, usize)> = a
        .ablate_heads
        .iter()
        .flatten()
        .map(|&[l, h]| (l, h))
        .collect();
    let settings_changed = precision != s.precision || ablate != s.ablate;
    s.ablate = ablate;
    s.set_precision(precision);
    // (2) With a task, the prompt is the task's input, not the main prompt.
    let new_prompt = match (&a.prompt, task) {
        (Some(p), None) => {
            s.prompt = p.clone();
            // Ids the prompt box tokenized belong to the old prompt.
            s.fixed_ids = None;
            s.chat = a.chat.unwrap_or(false);
            true
        }
        _ => false,
    };
    // (3)
    if let Some(t) = a.temperature {
        s.sampling.temperature = t.max(0.0);
    }
    if let Some(k) = a.top_k {
        s.sampling.top_k = k;
    }
    if let Some(p) = a.top_p {
        s.sampling.top_p = p.clamp(0.01, 1.0);
    }
    // (4) Generation runs the whole sequence again when it ends, so it also covers a rerun.
    if new_prompt {
        s.generated.clear();
    }
    match a.generate {
        Some(n) => s.generate(n.clamp(1, 256)),
        None if new_prompt => s.run(),
        None if settings_changed && s.n_tokens() > 0 => s.rerun(),
        None => {}
    }
    // (5)
    if let Some(t) = task {
        out.task = Some((t, a.prompt.clone()));
    }
    out.mode = a.mode.clone();
    out.train = train_request(a).ok().flatten();
    out.experiment = a.experiment.clone();
    // (6)
    if let Some(Ok(step)) = a.goto.as_deref().map(str::parse::<Step>) {
        let step = match step {
            Step::Layer(l, op) => Step::Layer(l.min(s.n_layers().saturating_sub(1)), op),
            other => other,
        };
        s.goto(step);
    }
    if let Some(l) = a.layer {
        let l = l.min(s.n_layers().saturating_sub(1));
        match s.cursor_step() {
            Step::Layer(_, op) => s.goto(Step::Layer(l, op)),
            _ => s.sel.layer = l,
        }
    }
    if let Some(h) = a.head {
        s.sel.head = h.min(s.model.config.n_heads().saturating_sub(1));
    }
    if let Some(p) = a.position {
        // Past the end selects the last position (clamped again when the pass arrives).
        s.sel.position = if s.n_tokens() > 0 && !new_prompt {
            p.min(s.n_tokens() - 1)
        } else {
            p
        };
        s.sel.key_position = None;
    }
    out
}
