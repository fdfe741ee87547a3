//! The Glassbox window (eframe/egui, wgpu renderer). See `app` for the layout, `worker`
//! for the model thread, `views` for what is shown, `lessons` for the lesson panel.

mod app;
mod export;
mod first_run;
mod fonts;
pub mod frame_bench;
mod heatmap;
mod i18n;
mod lesson_panel;
mod lessons;
mod screenshot;
mod session;
mod state;
mod theme;
mod views;
mod train_worker;
mod worker;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
mod tests;

use std::path::PathBuf;

use anyhow::anyhow;

/// Opens the window. `model`: a folder or `.gguf` (else the cached default, fetched on
/// first run from the first-run screen).
pub fn run(model: Option<PathBuf>) -> anyhow::Result<()> {
    let script = screenshot::Script::from_env();
    let size = script
        .as_ref()
        .and_then(screenshot::Script::window_size)
        .unwrap_or([1600.0, 1000.0]);
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("Glassbox")
            .with_app_id("glassbox")
            .with_inner_size(size)
            .with_min_inner_size([900.0, 600.0]),
        renderer: eframe::Renderer::Wgpu,
        // eframe 0.37 stores the window size in points divided by the zoom and restores it
        // multiplied again: with a presentation zoom the window shrank on every restart.
        persist_window: false,
        ..Default::default()
    };
    eframe::run_native(
        "Glassbox",
        options,
        Box::new(move |cc| {
            fonts::install(&cc.egui_ctx);
            Ok(Box::new(app::GlassboxApp::new(&cc.egui_ctx, model, script)))
        }),
    )
    .map_err(|e| anyhow!("could not open the window: {e}"))
}

impl eframe::App for app::GlassboxApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }

    fn save(&mut self, _storage: &mut dyn eframe::Storage) {
        // Our own atomic JSON file (see `state`), not eframe's storage.
        self.save_state();
    }

    fn on_exit(&mut self) {
        self.save_state();
    }

    fn persist_egui_memory(&self) -> bool {
        false
    }
}
