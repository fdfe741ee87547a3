//! Recipes side by side: the `compare.json` that `glassbox train --compare` writes (each
//! recipe trained on the same tokens, seed and budgets) read back, its loss curves overlaid,
//! its numbers in a table, and any run's checkpoint opened as the app's model. The engine
//! computed every number here; this page only picks the last value of a curve.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, TryRecvError};

use anyhow::{Context, Result, bail};
use egui::{RichText, Ui};
use egui_plot::{Corner, Legend, Line, LineStyle, Points};
use serde::Deserialize;

use crate::gui::i18n::Lang;
use crate::gui::model_picker::browse;
use crate::gui::views::{Request, ViewCtx};

/// `compare.json` as the app reads it; fields it does not know are ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct CompareFile {
    #[serde(default)]
    pub preset: String,
    #[serde(default)]
    pub seed: Option<u64>,
    #[serde(default)]
    pub steps: Option<usize>,
    #[serde(default)]
    pub budget_params: Option<u64>,
    pub runs: Vec<CompareRun>,
}

/// One recipe's run: its loss at every step (step 1 first) and its held-out evaluations.
#[derive(Debug, Clone, Deserialize)]
pub struct CompareRun {
    pub recipe: String,
    #[serde(default)]
    pub params: Option<u64>,
    #[serde(deserialize_with = "nan_as_null")]
    pub loss: Vec<f32>,
    #[serde(default)]
    pub eval: Vec<EvalPoint>,
    #[serde(default)]
    pub steps_per_second: Option<f64>,
    #[serde(default)]
    pub checkpoint: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub struct EvalPoint {
    pub step: usize,
    #[serde(deserialize_with = "one_nan_as_null")]
    pub loss: f32,
}

/// A diverged run's NaN or infinite loss: JSON has no NaN, so serde_json wrote `null`.
fn nan_as_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<f32>, D::Error> {
    let v: Vec<Option<f32>> = Deserialize::deserialize(d)?;
    Ok(v.into_iter().map(|l| l.unwrap_or(f32::NAN)).collect())
}

fn one_nan_as_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f32, D::Error> {
    Ok(Option::<f32>::deserialize(d)?.unwrap_or(f32::NAN))
}

/// A comparison read from `path`.
pub struct Loaded {
    pub path: PathBuf,
    pub file: CompareFile,
}

impl Loaded {
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// A run's checkpoint folder: absolute as written, else beside `compare.json` (or
    /// relative to where the command ran, where that is the folder that exists), else
    /// `DIR/RECIPE`.
    pub fn checkpoint(&self, run: &CompareRun) -> PathBuf {
        let dir = self.dir();
        let Some(c) = &run.checkpoint else { return dir.join(&run.recipe) };
        if c.is_absolute() {
            return c.clone();
        }
        [dir.join(c), c.clone(), dir.join(&run.recipe)]
            .into_iter()
            .find(|p| p.join("config.json").is_file())
            .unwrap_or_else(|| dir.join(c))
    }
}

/// Reads and checks a `compare.json`: every run has a recipe name and a loss curve.
pub fn read(path: &Path) -> Result<CompareFile> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    let file: CompareFile = serde_json::from_str(&text).with_context(|| format!("{}: not a comparison", path.display()))?;
    if file.runs.is_empty() {
        bail!("{}: no runs", path.display());
    }
    if let Some(r) = file.runs.iter().find(|r| r.loss.is_empty()) {
        bail!("{}: the run `{}` has no loss values", path.display(), r.recipe);
    }
    Ok(file)
}

/// The Compare recipes page's state.
#[derive(Default)]
pub struct Compare {
    pub path_text: String,
    pub loaded: Option<Loaded>,
    /// Why the file did not open, or why a checkpoint could not: one line.
    pub error: Option<String>,
    dialog: Option<Receiver<Option<PathBuf>>>,
}

impl Compare {
    /// Opens `path`; on failure the previous comparison stays and the error says why.
    pub fn load(&mut self, path: &Path, lang: Lang) {
        self.path_text = path.display().to_string();
        match read(path) {
            Ok(file) => {
                self.loaded = Some(Loaded { path: path.to_path_buf(), file });
                self.error = None;
            }
            Err(e) => {
                self.error = Some(lang.tf(format!("Could not open the comparison: {e:#}"), format!("无法打开对比文件：{e:#}")));
            }
        }
    }

    /// The desktop's file dialog on its own thread (the window keeps drawing).
    fn start_dialog(&mut self, ctx: &egui::Context, lang: Lang) {
        if !browse::dialog_possible() {
            self.error = Some(browse::no_dialog_message(lang));
            return;
        }
        let (tx, rx) = mpsc::channel();
        let ctx = ctx.clone();
        let title = lang.tr("Open a comparison (compare.json)", "打开对比文件（compare.json）");
        let spawned = std::thread::Builder::new().name("glassbox-compare-dialog".into()).spawn(move || {
            let picked = rfd::FileDialog::new().set_title(title).add_filter("compare.json", &["json"]).pick_file();
            let _ = tx.send(picked);
            ctx.request_repaint();
        });
        match spawned {
            Ok(_) => self.dialog = Some(rx),
            Err(e) => self.error = Some(format!("could not start a thread: {e}")),
        }
    }

    fn poll_dialog(&mut self, lang: Lang) {
        let Some(rx) = &self.dialog else { return };
        let picked = match rx.try_recv() {
            Ok(p) => p,
            Err(TryRecvError::Empty) => return,
            Err(TryRecvError::Disconnected) => None,
        };
        self.dialog = None;
        if let Some(p) = picked {
            self.load(&p, lang);
        }
    }

    pub fn ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>) {
        self.poll_dialog(cx.lang);
        if !cx.presenting || self.loaded.is_none() {
            self.open_ui(ui, cx);
        }
        if let Some(e) = &self.error {
            ui.colored_label(cx.theme.error(), e);
        }
        let Some(loaded) = &self.loaded else { return };
        summary_ui(ui, cx, loaded);
        curves_ui(ui, cx, &loaded.file);
        if let Some(outcome) = table_ui(ui, cx, loaded) {
            self.error = outcome;
        }
    }

    fn open_ui(&mut self, ui: &mut Ui, cx: &mut ViewCtx<'_>) {
        if !cx.presenting {
            ui.label(RichText::new(cx.tr(
                "`glassbox train --compare llama,gpt2,bert-mlm,…` trains each recipe on the same tokens, seed, parameter budget and step budget and writes compare.json; open it to overlay the curves.",
                "`glassbox train --compare llama,gpt2,bert-mlm,…` 用相同的词元、随机种子、参数预算和步数预算训练每个配方，并写出 compare.json；打开它即可叠加比较曲线。",
            )).color(cx.theme.muted()));
        }
        ui.horizontal_wrapped(|ui| {
            let waiting = self.dialog.is_some();
            if ui.add_enabled(!waiting, egui::Button::new(RichText::new(cx.tr("Open comparison…", "打开对比……")).strong())).clicked() {
                self.start_dialog(ui.ctx(), cx.lang);
            }
            if waiting {
                ui.spinner();
            }
            let edit = egui::TextEdit::singleline(&mut self.path_text).desired_width(380.0).hint_text("/path/to/compare.json");
            ui.add(edit).on_hover_text(cx.tr("The path of compare.json", "compare.json 的路径"));
            let typed = self.path_text.trim().to_string();
            if ui.add_enabled(!typed.is_empty(), egui::Button::new(cx.tr("Open", "打开"))).clicked() {
                self.load(Path::new(&typed), cx.lang);
            }
        });
    }
}

fn summary_ui(ui: &mut Ui, cx: &ViewCtx<'_>, loaded: &Loaded) {
    let f = &loaded.file;
    let mut parts = vec![cx.lang.tf(format!("preset {}", f.preset), format!("预设 {}", f.preset))];
    if let Some(s) = f.seed {
        parts.push(cx.lang.tf(format!("seed {s}"), format!("种子 {s}")));
    }
    if let Some(n) = f.steps {
        parts.push(cx.lang.tf(format!("{n} steps"), format!("{n} 步")));
    }
    if let Some(b) = f.budget_params {
        parts.push(cx.lang.tf(format!("budget {} parameters", crate::gui::lesson_numbers::grouped(b)), format!("预算 {} 个参数", crate::gui::lesson_numbers::grouped(b))));
    }
    ui.label(RichText::new(parts.join(" · ")).strong());
}

/// Training loss per step (solid) and held-out loss (dashed, with markers), one colour per
/// recipe.
fn curves_ui(ui: &mut Ui, cx: &ViewCtx<'_>, f: &CompareFile) {
    ui.label(RichText::new(cx.tr("Loss per recipe: training (solid), held-out (dashed, dots)", "各配方的损失：训练（实线），留出（虚线加圆点）")).strong());
    let legend = Legend::default().position(Corner::RightTop);
    // On a projector the curves take the room the table leaves.
    let table = 40.0 * (f.runs.len() + 1) as f32 + 24.0;
    let height = if cx.presenting { (ui.available_height() - table).clamp(260.0, 640.0) } else { 320.0 };
    super::plots::plot(cx, "train-compare", cx.tr("loss", "损失")).height(height).legend(legend).show(ui, |p| {
        for (i, run) in f.runs.iter().enumerate() {
            let colour = cx.theme.series(i);
            // A diverged run's curve stops where its loss stopped being a number.
            let train: Vec<[f64; 2]> = run.loss.iter().enumerate().filter(|(_, l)| l.is_finite()).map(|(s, &l)| [(s + 1) as f64, f64::from(l)]).collect();
            // Earlier runs wider, so a curve drawn over an equal one still shows at its edges.
            let width = (3.5 - 0.75 * i as f32).max(1.5);
            p.line(Line::new(run.recipe.clone(), train).color(colour).width(width));
            if run.eval.is_empty() {
                continue;
            }
            let name = cx.lang.tf(format!("{} held-out", run.recipe), format!("{} 留出", run.recipe));
            let eval: Vec<[f64; 2]> = run.eval.iter().filter(|e| e.loss.is_finite()).map(|e| [e.step as f64, f64::from(e.loss)]).collect();
            p.line(Line::new(name.clone(), eval.clone()).color(colour).width(1.5).style(LineStyle::dashed_loose()));
            p.points(Points::new(name, eval).color(colour).radius(3.0));
        }
    });
}

/// Recipe, parameters, final losses, speed and the button that opens its checkpoint. A click
/// returns `Some(error line if the checkpoint folder is missing)`.
fn table_ui(ui: &mut Ui, cx: &mut ViewCtx<'_>, loaded: &Loaded) -> Option<Option<String>> {
    let mut outcome = None;
    egui::Grid::new("train-compare-table").striped(true).spacing([18.0, 6.0]).show(ui, |ui| {
        for h in [cx.tr("Recipe", "配方"), cx.tr("Parameters", "参数量"), cx.tr("Final loss", "最终损失"), cx.tr("Final held-out loss", "最终留出损失"), cx.tr("Steps/s", "步/秒"), ""] {
            ui.label(RichText::new(h).strong());
        }
        ui.end_row();
        for (i, run) in loaded.file.runs.iter().enumerate() {
            ui.label(RichText::new(&run.recipe).strong().color(cx.theme.series(i)));
            ui.label(run.params.map_or("–".into(), crate::gui::lesson_numbers::grouped));
            ui.label(run.loss.last().map_or("–".into(), |l| format!("{l:.4}")));
            ui.label(run.eval.last().map_or("–".into(), |e| format!("{:.4}", e.loss)));
            ui.label(run.steps_per_second.map_or("–".into(), |s| format!("{s:.1}")));
            let dir = loaded.checkpoint(run);
            let button = ui.button(cx.tr("Open in the other views", "在其他视图中打开")).on_hover_text(dir.display().to_string());
            if button.clicked() {
                outcome = Some(open_checkpoint(cx, &run.recipe, dir));
            }
            ui.end_row();
        }
    });
    outcome
}

/// Asks the app to open `dir` as its model (as the Training view's checkpoints open), on
/// the current prompt; a missing folder is an error line instead.
fn open_checkpoint(cx: &mut ViewCtx<'_>, recipe: &str, dir: PathBuf) -> Option<String> {
    if !dir.join("config.json").is_file() {
        return Some(cx.lang.tf(
            format!("The checkpoint of `{recipe}` is missing: no model folder at {}", dir.display()),
            format!("`{recipe}` 的检查点不存在：{} 处没有模型文件夹", dir.display()),
        ));
    }
    cx.requests.push(Request::OpenModel {
        dir,
        prompt: cx.s.prompt.clone(),
        note: cx.lang.tf(format!("the `{recipe}` run of the comparison"), format!("对比中的 `{recipe}` 运行")),
        head: None,
        grads: None,
    });
    None
}
