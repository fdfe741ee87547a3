//! GPU faults in the window (RELIABILITY.md rows 23–25), on lavapipe in CI: a device too
//! small for a tensor and a device lost mid-pass both switch the model to the CPU reference
//! with a notice and the app carries on; on the GPU, "Check against the CPU reference"
//! reports agreement, or names the first hook where the GPU parts from the reference.
//! The engine's half is in `tests/tests/reliability.rs`. No adapter: a skip with a note,
//! unless `GLASSBOX_REQUIRE_GPU=1`.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use egui_kittest::kittest::Queryable;
use glassbox_engine::exec::executor::{BackendKind, PassOptions};
use glassbox_engine::exec::gpu::{GpuContext, wgpu};
use glassbox_engine::{CaptureFilter, Device, Model};

use super::reliability::{fixture_copy, poke_f32};
use super::{fixture_ids, fixture_model, harness};
use crate::gui::app::GlassboxApp;
use crate::gui::state::PersistedState;
use crate::gui::worker::{Command, Reply, Worker, WorkerCore};

/// The app on `model` with its worker (run inline) on `ctx`'s GPU.
fn app_on_gpu(model: Arc<Model>, ctx: Arc<GpuContext>) -> GlassboxApp {
    let worker = Worker::inline_on(Arc::clone(&model), Device::Gpu, Some(ctx)).expect("GPU worker");
    let state = PersistedState { prompt: fixture_ids(), ..PersistedState::default() };
    GlassboxApp::with_model(model, worker, state)
}

#[test]
fn row23_a_tensor_over_the_gpu_limit_moves_the_model_to_the_cpu_with_a_notice() {
    // Storage bindings of 64 KiB: the weights are split to fit and the KV cache's first 64
    // rows (48 KiB a layer) fit, so the executor opens; the first group of steps' captured
    // tensors for 17 positions (76.6 KiB, read back in one buffer) do not, so the pass fails
    // on the GPU.
    let small = |a: &wgpu::Adapter| wgpu::Limits { max_storage_buffer_binding_size: 64 << 10, ..a.limits() };
    let Some(ctx) = glassbox_tests::gpu::own_ctx(small) else { return };
    let mut h = harness(app_on_gpu(fixture_model(), ctx));
    h.run();
    h.get_by_label_contains("`one group's read-back` needs 76.6 KiB");
    h.get_by_label_contains("at most 64.0 KiB per buffer binding");
    h.get_by_label_contains("running on the CPU (f32 reference)");
    let r = h.state_mut().ready().expect("ready");
    assert_eq!(r.s.backend, BackendKind::Cpu);
    assert!(r.s.error.is_none(), "{:?}", r.s.error);
    assert_eq!((r.s.n_tokens(), r.s.computed), (17, Some(r.s.last_index())), "the pass ran on the CPU");
}

#[test]
fn row24_a_device_lost_mid_pass_moves_the_model_to_the_cpu_and_the_worker_carries_on() {
    let Some(ctx) = glassbox_tests::gpu::own_ctx(|a| a.limits()) else { return };
    let model = fixture_model();
    let ids = glassbox_tests::gpu::input_ids("tiny-smollm2-shape");
    let latest = Arc::new(AtomicU64::new(1));
    let mut replies = Vec::new();
    let mut core = WorkerCore::new(Arc::clone(&model), Device::Gpu, Some(Arc::clone(&ctx)), Arc::clone(&latest), &mut |r| replies.push(r)).expect("GPU worker");
    let options = PassOptions::capture(CaptureFilter::All);
    // The device goes away once the first group of steps has come back.
    let mut before_loss = 0;
    core.handle(Command::Run { pass: 1, ids: ids.clone(), options: options.clone(), budget: glassbox_engine::long::budget::DEFAULT_BUDGET }, &mut |r| {
        if matches!(r, Reply::Delta { .. }) && before_loss == 0 {
            before_loss = 1;
            ctx.device.destroy();
        }
        replies.push(r);
    });
    assert_eq!(before_loss, 1, "the GPU streamed steps before it was lost");
    let notices: Vec<&String> = replies.iter().filter_map(|r| if let Reply::Notice(n) = r { Some(n) } else { None }).collect();
    let lost = notices.iter().find(|n| n.contains("the device was lost")).unwrap_or_else(|| panic!("no notice of the loss: {notices:?}"));
    assert!(lost.contains("running on the CPU (f32 reference)"), "{lost}");
    assert!(replies.iter().any(|r| matches!(r, Reply::Device { kind: BackendKind::Cpu, .. })), "the status bar is told");
    assert!(!replies.iter().any(|r| matches!(r, Reply::Failed { .. })), "the pass did not fail");
    let finished = replies.iter().filter(|r| matches!(r, Reply::Finished { pass: 1, .. })).count();
    assert_eq!(finished, 1, "the pass finished, on the CPU");
    // The app stays usable: the next pass runs (on the CPU) without another notice.
    replies.clear();
    latest.store(2, std::sync::atomic::Ordering::Release);
    core.handle(Command::Run { pass: 2, ids, options, budget: glassbox_engine::long::budget::DEFAULT_BUDGET }, &mut |r| replies.push(r));
    assert!(replies.iter().any(|r| matches!(r, Reply::Finished { pass: 2, .. })));
    assert!(!replies.iter().any(|r| matches!(r, Reply::Notice(_) | Reply::Failed { .. })));
}

#[test]
fn row25_the_check_against_the_cpu_reference_agrees_or_names_where_the_gpu_parts() {
    let Some(ctx) = glassbox_tests::gpu::ctx() else { return };
    // A sound GPU pass: every hook within its bound.
    let mut h = harness(app_on_gpu(fixture_model(), Arc::clone(&ctx)));
    h.run();
    assert_eq!(h.state_mut().ready().expect("ready").s.backend, BackendKind::Gpu);
    h.get_by_label("Check against the CPU reference").click();
    h.run();
    h.get_by_label_contains("Check against the CPU reference: the GPU matches the CPU reference at all");
    h.get_by_label("matches the CPU reference");

    // NaN weights: NaN on the GPU is a divergence whatever the reference holds, named by
    // its first hook (layer, op), NMSE and max |Δ|, and kept on screen in red.
    let (_tmp, dir) = fixture_copy();
    poke_f32(&dir.join("model.safetensors"), "model.layers.0.self_attn.q_proj.weight", &[f32::NAN; 4]);
    let model = Arc::new(Model::load(&dir).expect("loads with a warning"));
    let mut h = harness(app_on_gpu(model, ctx));
    h.run();
    assert!(h.query_by_label("matches the CPU reference").is_none());
    h.get_by_label("Check against the CPU reference").click();
    h.run();
    h.get_by_label_contains("the GPU diverges from the CPU reference first at blocks.0.attn.hook_q (layer 0, op q): NMSE");
    h.get_by_label_contains("), max |Δ| ");
    h.get_by_label_contains("NaN on the GPU (");
    h.get_by_label("DIFFERS from the CPU reference at blocks.0.attn.hook_q (layer 0, op q)");
}
