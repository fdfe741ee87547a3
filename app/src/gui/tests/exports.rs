//! What File → Export writes: figures as SVG beside the PNG (well-formed XML with the text
//! and the cells as elements), and hooks as `.npz` / `.npy` that numpy loads with the
//! trace's shapes and values.

use std::path::{Path, PathBuf};
use std::process::Command;

use egui_kittest::kittest::Queryable;
use quick_xml::events::Event;

use super::{app_on, fixture_ids, fixture_model, harness};
use crate::gui::export::{Figure, write_figure};
use crate::gui::theme::Colormap;

/// Element names of a well-formed XML file (a parse error or an unclosed element fails).
fn svg_elements(path: &Path) -> (Vec<String>, String) {
    let text = std::fs::read_to_string(path).expect("svg written");
    let mut reader = quick_xml::Reader::from_str(&text);
    let (mut names, mut texts, mut depth) = (Vec::new(), String::new(), 0i32);
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                depth += 1;
                names.push(String::from_utf8_lossy(e.name().as_ref()).into_owned());
            }
            Ok(Event::Empty(e)) => names.push(String::from_utf8_lossy(e.name().as_ref()).into_owned()),
            Ok(Event::End(_)) => depth -= 1,
            Ok(Event::Text(t)) => texts.push_str(&String::from_utf8_lossy(t.as_ref())),
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!("{}: not well-formed at {}: {e}", path.display(), reader.buffer_position()),
        }
    }
    assert_eq!(depth, 0, "{}: unclosed elements", path.display());
    assert_eq!(names.first().map(String::as_str), Some("svg"), "{}", path.display());
    (names, texts)
}

#[test]
fn every_figure_exports_as_a_well_formed_svg_beside_the_png() {
    let dir = tempfile::tempdir().expect("temp dir");
    let heat = Figure::Heatmap {
        title: "归纳 · induction".into(),
        rows: 3,
        cols: 4,
        values: vec![0.1, 0.9, f32::NAN, 0.4, 0.6, 0.6, 0.6, 0.2, 0.3, 0.5, 0.0, 1.0],
        row_labels: vec!["L0".into(), "L1".into(), "L2".into()],
        col_labels: vec!["H0".into(), "H1".into(), "H2".into(), "H3".into()],
        row_title: "层".into(),
        col_title: "head".into(),
        map: Colormap::Viridis,
        scale: crate::gui::heatmap::ColorScale::fixed(0.0, 1.0),
        unit: "score".into(),
    };
    let bars = Figure::Bars {
        title: "DLA".into(),
        labels: vec!["L23.H4".into(), "L29.mlp".into()],
        values: vec![3.0, -2.1],
    };
    let lines = Figure::Lines {
        title: "divergence".into(),
        x_labels: (0..5).map(|i| format!("L{i}")).collect(),
        x_title: "layer".into(),
        y_title: "|B − A| / |A|".into(),
        series: vec![("f16".into(), vec![0.0, 1e-4, 2e-4, 5e-4, 1e-3]), ("q4".into(), vec![0.0, 0.05, 0.1, 0.2, 0.3])],
        log_y: true,
    };
    for (name, fig) in [("heat", &heat), ("bars", &bars), ("lines", &lines)] {
        let png = dir.path().join(format!("{name}.png"));
        let svg = dir.path().join(format!("{name}.svg"));
        write_figure(fig, &png).expect("png");
        write_figure(fig, &svg).expect("svg");
        assert_eq!(&std::fs::read(&png).expect("png")[..4], b"\x89PNG");
        let (elements, texts) = svg_elements(&svg);
        let count = |n: &str| elements.iter().filter(|e| *e == n).count();
        assert!(count("text") >= 3, "{name}: {elements:?}");
        assert!(texts.contains(fig.title()), "{name}: the title is text: {texts}");
        match name {
            // Cells as rectangles: at least one per row (runs of one colour merge), plus
            // the colour bar's steps.
            "heat" => {
                assert!(count("rect") >= 3 + 200, "{name}: {} rects", count("rect"));
                assert!(texts.contains("L2") && texts.contains("H3") && texts.contains("层"));
            }
            "bars" => assert!(count("rect") >= 3 && texts.contains("L29.mlp"), "{elements:?}"),
            _ => assert!(count("polyline") >= 2 && texts.contains("1e-3") && texts.contains("q4"), "{elements:?} {texts}"),
        }
    }
}

/// The export folder of this test binary (figures and hooks land there).
pub(super) fn export_dir() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("glassbox-test-exports-{}", std::process::id()));
        crate::gui::export::set_test_dir(dir.clone());
        dir
    })
    .clone()
}

/// numpy is there, or the test skips with a note (CI sets GLASSBOX_REQUIRE_NUMPY=1).
fn numpy() -> bool {
    let ok = Command::new("python3").args(["-c", "import numpy"]).output().is_ok_and(|o| o.status.success());
    if !ok {
        assert!(std::env::var_os("GLASSBOX_REQUIRE_NUMPY").is_none(), "numpy is required (GLASSBOX_REQUIRE_NUMPY) but `python3 -c 'import numpy'` failed");
        eprintln!("note: skipping the numpy check: python3 cannot import numpy");
    }
    ok
}

/// `{name: (shape, sum)}` of every array numpy reads from `path` (.npz or .npy).
fn numpy_load(path: &Path) -> Vec<(String, Vec<usize>, f64)> {
    let script = r#"
import sys, numpy as np
p = sys.argv[1]
z = np.load(p)
items = z.items() if p.endswith(".npz") else [("", z)]
for k, a in items:
    assert a.dtype == np.float32, a.dtype
    print(k, ",".join(map(str, a.shape)), repr(float(a[np.isfinite(a)].astype(np.float64).sum())))
"#;
    let out = Command::new("python3").args(["-c", script]).arg(path).output().expect("python3 runs");
    assert!(out.status.success(), "numpy could not load {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let mut it = l.split(' ');
            let (name, shape, sum) = (it.next().unwrap_or(""), it.next().unwrap_or(""), it.next().unwrap_or("nan"));
            let shape = shape.split(',').filter(|s| !s.is_empty()).map(|s| s.parse().expect("dim")).collect();
            (name.to_string(), shape, sum.parse().expect("sum"))
        })
        .collect()
}

/// The saved file named by the newest notice.
fn saved_file(h: &mut egui_kittest::Harness<'static, crate::gui::app::GlassboxApp>) -> PathBuf {
    let notice = h.state().notices.last().map(|n| n.0.clone()).expect("a notice");
    let path = notice.rsplit(": ").next().expect("a path");
    PathBuf::from(path)
}

#[test]
fn hooks_export_from_the_file_menu_for_numpy() {
    let dir = export_dir();
    let mut h = harness(app_on(fixture_model(), &fixture_ids()));
    h.run();
    {
        let r = h.state_mut().ready().expect("ready");
        r.s.goto(glassbox_engine::Step::Layer(1, glassbox_engine::LayerOp::Softmax));
    }
    h.run();
    h.get_by_label("File").click();
    h.run();
    h.get_by_label("Export every hook of this pass (.npz)").click();
    h.run();
    let npz = saved_file(&mut h);
    assert!(npz.starts_with(&dir) && npz.extension().is_some_and(|e| e == "npz"), "{}", npz.display());
    h.get_by_label("File").click();
    h.run();
    h.get_by_label("Export one hook (.npy)").click();
    h.run();
    h.get_by_label("blocks.1.attn.hook_pattern").click();
    h.run();
    let npy = saved_file(&mut h);
    assert_eq!(npy.extension().and_then(|e| e.to_str()), Some("npy"));
    if !numpy() {
        return;
    }
    let trace = h.state_mut().ready().expect("ready").s.trace.clone();
    let loaded = numpy_load(&npz);
    assert_eq!(loaded.len(), trace.len(), "one array per recorded hook");
    for (name, shape, sum) in loaded {
        let key: glassbox_engine::HookKey = name.parse().expect("entries are named by hook");
        let t = trace.get(key).expect("in the trace");
        assert_eq!(shape, t.shape().to_vec(), "{name}");
        let want: f64 = t.data.iter().filter(|v| v.is_finite()).map(|&v| f64::from(v)).sum();
        assert!((sum - want).abs() <= 1e-6 * want.abs().max(1.0), "{name}: {sum} vs {want}");
    }
    let one = numpy_load(&npy);
    let p = trace.get("blocks.1.attn.hook_pattern".parse().expect("key")).expect("pattern");
    assert_eq!(one[0].1, p.shape().to_vec());
    assert!((one[0].2 - p.data.iter().map(|&v| f64::from(v)).sum::<f64>()).abs() < 1e-3);
}
