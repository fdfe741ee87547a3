//! No figure opens black: on the real SmolLM2 and a long prompt (a head's pattern spread over
//! hundreds of keys, every p near 1/n), every heatmap texture the views upload at their
//! default scale keeps most of its cells out of the darkest tenth of its colormap. The
//! same head drawn on the linear scale is checked to be black, so the check can fail.

use egui::Color32;
use egui_kittest::Harness;

use super::{app_on, harness, smollm2};
use crate::gui::app::GlassboxApp;
use crate::gui::heatmap::ScaleMode;
use crate::gui::theme::Colormap;
use crate::gui::views::attention::{DARK_T, auto_pattern_scale, pattern_t};
use crate::gui::views::{ViewId, registry};

/// The most of a figure that may be near its darkest colour.
const BLACK: f32 = 0.95;

/// A long English prompt with some repetition, as a class would paste an article.
fn long_prompt() -> String {
    let text = "The committee met on Tuesday to discuss the new library. Several members argued that the old building could be repaired, while others wanted a new one near the river. ";
    text.repeat(18)
}

/// The colours of the darkest tenth of the sequential maps.
fn dark_colours() -> Vec<Color32> {
    let steps = (DARK_T * 255.0) as usize;
    [Colormap::Viridis, Colormap::Magma]
        .into_iter()
        .flat_map(|m| (0..=steps).map(move |i| m.at(i as f32 / 255.0)))
        .collect()
}

/// `(texture name, share of dark pixels, size)` of every heatmap image built over a few
/// frames (the images as `heatmap::CachedTexture` built them for the GPU).
fn built_dark_shares(h: &mut Harness<'static, GlassboxApp>, frames: usize) -> Vec<(String, f32, [usize; 2])> {
    let dark = dark_colours();
    for _ in 0..frames {
        h.step();
    }
    crate::gui::heatmap::built::take()
        .into_iter()
        .filter(|(_, img)| img.pixels.len() >= 64)
        .map(|(name, img)| {
            let n = img.pixels.iter().filter(|p| dark.contains(p)).count();
            (name, n as f32 / img.pixels.len() as f32, img.size)
        })
        .collect()
}

#[test]
fn no_heatmap_opens_black_on_a_long_prompt() {
    let Some(model) = smollm2() else { return };
    let mut h = harness(app_on(model, &long_prompt()));
    h.run();
    let n = h.state_mut().ready().expect("ready").s.n_tokens();
    assert!(n >= 256, "a long prompt: {n} tokens shown");

    // The pattern of L1 H0 on the linear scale is black: the check below can fail.
    h.state_mut().ready().expect("ready").s.goto(glassbox_engine::Step::Layer(1, glassbox_engine::LayerOp::Softmax));
    h.state_mut().view = crate::gui::views::attention::ID;
    // A long prompt's block is recomputed for the window once a view asks for it.
    for _ in 0..5 {
        h.run();
    }
    {
        let r = h.state_mut().ready().expect("ready");
        let key = glassbox_engine::HookKey::Block(1, glassbox_engine::BlockHook::Pattern);
        let t = r.s.trace.get_shared(key).cloned().expect("pattern");
        let t = t.as_3d().expect("3d");
        // The rows shown (a long prompt's window) against every key they can see.
        let ((_, nq, nk), off) = (t.dim(), r.s.trace.pos_offset);
        let cells: Vec<(f32, f32)> = (0..nq).flat_map(|q| (0..nk.min(q + off + 1)).map(move |k| (q, k))).map(|(q, k)| (t[[0, q, k]], 1.0)).collect();
        let dark = |m: ScaleMode| cells.iter().filter(|&&(p, rm)| pattern_t(m, p, rm) < DARK_T).count() as f32 / cells.len() as f32;
        assert!(dark(ScaleMode::Linear) > BLACK, "linear shows L1 H0 black ({})", dark(ScaleMode::Linear));
        let auto = auto_pattern_scale(&cells);
        assert!(dark(auto) < BLACK, "{auto:?} leaves {} dark", dark(auto));
    }

    crate::gui::heatmap::built::take();
    let mut problems = Vec::new();
    let mut seen = 0;
    let views = registry::catalog();
    let mut screens: Vec<(ViewId, Option<&str>)> = views.iter().map(|v| (v.id, None)).collect();
    screens.extend(views.iter().flat_map(|v| v.modes.iter().map(|&m| (v.id, Some(m)))));
    for &(view, mode) in &screens {
        {
            let app = h.state_mut();
            app.view = view;
            let r = app.ready().expect("ready");
            if let Some(m) = mode {
                r.views.set_mode(m);
            }
        }
        for (id, share, size) in built_dark_shares(&mut h, 6) {
            seen += 1;
            if share >= BLACK {
                problems.push(format!("{view:?} {mode:?}: {id} {size:?} is {:.0}% dark", share * 100.0));
            }
        }
    }
    assert!(seen >= 5, "only {seen} heatmaps were drawn");
    assert!(problems.is_empty(), "figures that open black:\n{}", problems.join("\n"));
}
