//! The Glassbox window (eframe/egui, wgpu renderer). See `app` for the layout, `worker`
//! for the model thread, `views` for what is shown, `lessons` for the lesson panel.

mod app;
mod export;
mod first_run;
pub(crate) mod fonts;
mod handout;
pub mod frame_bench;
pub mod frame_bench_side;
mod heatmap;
mod scale;
mod i18n;
mod lesson_answers;
mod lesson_panel;
mod lesson_numbers;
mod lessons;
mod model_picker;
pub mod model_table;
mod prompt_input;
mod recent;
mod saved_session;
mod screenshot;
mod session;
mod state;
pub(crate) mod theme;
mod views;
mod train_worker;
mod worker;
mod workshop;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
mod tests;

use std::path::PathBuf;

pub use saved_session::frame::Startup;

use std::sync::Arc;

use anyhow::anyhow;
use eframe::egui_wgpu::{WgpuConfiguration, WgpuSetup, WgpuSetupCreateNew};
use glassbox_engine::exec::gpu::{GpuContext, wgpu};

/// eframe's device, opened with what the model's kernels need as well as what drawing needs:
/// the adapter's own limits (large weight buffers) and shader-f16 where present.
fn wgpu_options() -> WgpuConfiguration {
    let setup = WgpuSetupCreateNew {
        device_descriptor: Arc::new(|adapter: &wgpu::Adapter| {
            let mut limits = adapter.limits();
            limits.max_texture_dimension_2d = limits.max_texture_dimension_2d.max(8192);
            wgpu::DeviceDescriptor {
                label: Some("glassbox (window and model)"),
                required_features: adapter.features() & wgpu::Features::SHADER_F16,
                required_limits: limits,
                ..Default::default()
            }
        }),
        ..WgpuSetupCreateNew::without_display_handle()
    };
    WgpuConfiguration { wgpu_setup: WgpuSetup::CreateNew(setup), ..Default::default() }
}

/// Opens the window. `model`: a folder or `.gguf` (else the cached default, fetched on
/// first run from the first-run screen). `startup`: a session or workshop to open once the
/// window is up.
pub fn run(model: Option<PathBuf>, startup: Option<Startup>) -> anyhow::Result<()> {
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
        wgpu_options: wgpu_options(),
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
            // The model runs on the window's device, not a second one.
            let gpu = cc.wgpu_render_state.as_ref().map(|rs| {
                GpuContext::from_device(rs.device.clone(), rs.queue.clone(), rs.adapter.get_info())
            });
            let mut app = app::GlassboxApp::new(&cc.egui_ctx, model, script, gpu);
            app.startup = startup;
            Ok(Box::new(app))
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

    /// Scripted screenshots: the Xvfb pointer rests mid-window; without this its hover
    /// tooltip would cover whatever figure is there.
    fn raw_input_hook(&mut self, _ctx: &egui::Context, raw_input: &mut egui::RawInput) {
        if self.scripted() {
            raw_input.events.push(egui::Event::PointerGone);
        }
    }
}
