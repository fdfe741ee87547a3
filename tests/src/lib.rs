//! Shared helpers for Glassbox's cross-crate tests: fixture paths, golden readers, and
//! comparisons that report the first diverging hook.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use glassbox_engine::Tensor;
use glassbox_engine::exec::trace::Trace;

pub mod as_downloaded;
pub mod broken;
pub mod fuzz;
pub mod golden;
pub mod gpu;
pub mod kquant;
pub mod tolerance;

pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

pub const FIXTURES: [&str; 4] = [
    "tiny-gqa-tied",
    "tiny-mha-untied",
    "tiny-llama31-rope-scaling",
    "tiny-smollm2-shape",
];

/// A golden tensor: shape and f32 values (ids come back as f32 too).
#[derive(Debug, Clone)]
pub struct Golden {
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

/// Every tensor of a `golden.safetensors`.
pub fn read_goldens(path: &std::path::Path) -> anyhow::Result<BTreeMap<String, Golden>> {
    let bytes = std::fs::read(path)?;
    let st = safetensors::SafeTensors::deserialize(&bytes)?;
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        let data = view.data();
        let values = match view.dtype() {
            safetensors::Dtype::F32 => data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            safetensors::Dtype::I64 => data
                .chunks_exact(8)
                .map(|b| i64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as f32)
                .collect(),
            other => anyhow::bail!("{name}: unexpected dtype {other:?}"),
        };
        out.insert(name, Golden { shape: view.shape().to_vec(), values });
    }
    Ok(out)
}

/// Max abs difference, treating equal infinities as equal and any NaN or inf mismatch as ∞.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| {
            if x == y {
                0.0
            } else if x.is_finite() && y.is_finite() {
                (x - y).abs()
            } else {
                f32::INFINITY
            }
        })
        .fold(0.0, f32::max)
}

/// Max abs of the finite reference values.
pub fn max_abs(a: &[f32]) -> f32 {
    a.iter().filter(|v| v.is_finite()).map(|v| v.abs()).fold(0.0, f32::max)
}

/// Normalized mean squared error `Σ(a-b)² / Σb²` over finite entries.
pub fn nmse(a: &[f32], reference: &[f32]) -> f64 {
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(reference) {
        if x.is_finite() && y.is_finite() {
            num += f64::from(x - y).powi(2);
            den += f64::from(y).powi(2);
        }
    }
    num / den.max(1e-30)
}

/// A CPU pass of `model` on the golden input, every golden hook captured and within the
/// fixture tolerance (at least `min_hooks` of them); prints the largest error and where.
pub fn assert_every_hook_matches(name: &str, model: std::sync::Arc<glassbox_engine::Model>, goldens: &BTreeMap<String, Golden>, min_hooks: usize) {
    use glassbox_engine::exec::executor::{Executor, PassOptions};
    use glassbox_engine::exec::trace::CaptureFilter;
    let ids: Vec<u32> = goldens["input_ids"].values.iter().map(|&v| v as u32).collect();
    let mut exec = glassbox_engine::exec::cpu::CpuExecutor::new(model);
    let trace = exec.forward(&ids, PassOptions::capture(CaptureFilter::All)).unwrap();
    let mut checked = 0;
    for golden_name in goldens.keys().filter(|k| k.as_str() != "input_ids") {
        let key: glassbox_engine::HookKey = golden_name.parse().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(trace.get(key).is_some(), "{name}: {golden_name} was not captured");
        checked += 1;
    }
    assert!(checked >= min_hooks, "{name}: only {checked} hooks in the golden");
    if let Some(diff) = first_divergence(&trace, goldens, tolerance::FIXTURE_HOOK_REL as f32) {
        panic!("{name}: first diverging hook: {diff}");
    }
    let (worst, at) = worst_relative(&trace, goldens);
    eprintln!("{name}: {checked} hooks, largest error {worst:.1e} of max(1, max |ref|), at {at}");
}

/// The largest `max |ours − ref| / max(1, max |ref|)` over the golden hooks, and where.
pub fn worst_relative(trace: &Trace, goldens: &BTreeMap<String, Golden>) -> (f32, String) {
    let mut worst = (0.0f32, String::new());
    for (name, g) in goldens.iter().filter(|(k, _)| k.as_str() != "input_ids") {
        let ours = values_of(trace.get(name.parse().unwrap()).unwrap());
        let rel = max_abs_diff(&ours, &g.values) / max_abs(&g.values).max(1.0);
        if rel > worst.0 {
            worst = (rel, name.clone());
        }
    }
    worst
}

/// Compares every golden hook present in `goldens` with `trace`, in forward order, and
/// returns the first that exceeds `max abs ≤ rel · max(1, max|ref|)` (DESIGN §6).
pub fn first_divergence(trace: &Trace, goldens: &BTreeMap<String, Golden>, rel: f32) -> Option<String> {
    let mut checked = 0;
    for key in trace.keys() {
        let name = key.to_string();
        let Some(reference) = goldens.get(&name) else { continue };
        checked += 1;
        let Some(ours) = trace.get(key) else { continue };
        if ours.shape() != reference.shape.as_slice() {
            return Some(format!("{name}: shape {:?} vs golden {:?}", ours.shape(), reference.shape));
        }
        let values = values_of(ours);
        let err = max_abs_diff(&values, &reference.values);
        let bound = rel * max_abs(&reference.values).max(1.0);
        if err > bound || values.iter().any(|v| v.is_nan()) {
            return Some(format!(
                "{name}: max abs error {err:e} > {bound:e} (NMSE {:e})",
                nmse(&values, &reference.values)
            ));
        }
    }
    if checked == 0 {
        return Some("no golden hook was compared".into());
    }
    None
}

pub fn values_of(t: &Tensor) -> Vec<f32> {
    t.data.iter().copied().collect()
}

/// A copy of fixture `name` with a byte-level tokenizer (the 256 byte symbols, then
/// `<|im_start|>` and `<|im_end|>` as special tokens) and a ChatML chat template, so text
/// and chat paths (tasks, the app) run on a tiny model. Needs vocab_size ≥ 258.
pub fn fixture_with_tokenizer(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join(name);
    std::fs::create_dir(&dir).expect("fixture copy");
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(fixtures_dir().join(name).join(f), dir.join(f)).expect("fixture copy");
    }
    let mut symbols: Vec<String> = Vec::new();
    let mut extra = 0u32;
    for b in 0u32..256 {
        let printable = (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
        let c = if printable {
            b
        } else {
            extra += 1;
            255 + extra
        };
        symbols.push(char::from_u32(c).map(String::from).unwrap_or_default());
    }
    symbols.push("<|im_start|>".into());
    symbols.push("<|im_end|>".into());
    let tokens: Vec<&str> = symbols.iter().map(String::as_str).collect();
    let mut types = vec![1i64; 256];
    types.extend([3, 3]);
    let json = glassbox_engine::load::gguf::bpe_tokenizer_json(&tokens, &[], Some(&types), "smollm").expect("tokenizer json");
    std::fs::write(dir.join("tokenizer.json"), json.to_string()).expect("write tokenizer");
    let template = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";
    let config = serde_json::json!({"chat_template": template, "eos_token": "<|im_end|>", "bos_token": "<|im_start|>"});
    std::fs::write(dir.join("tokenizer_config.json"), config.to_string()).expect("write tokenizer config");
    (tmp, dir)
}

/// The fixture's 8 greedy tokens from transformers (`golden_generate.json`).
pub fn golden_greedy(name: &str) -> Vec<u32> {
    golden_generation(name).1
}

/// The fixture's prompt ids and transformers' greedy tokens after it (`golden_generate.json`).
pub fn golden_generation(name: &str) -> (Vec<u32>, Vec<u32>) {
    let path = fixtures_dir().join(name).join("golden_generate.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let ids = |key: &str| serde_json::from_value(json[key].clone()).unwrap_or_else(|e| panic!("{}: {key}: {e}", path.display()));
    (ids("input_ids"), ids("generated_ids"))
}

/// Runs a NumPy check on `path` (the snippet sees `np` and `path`). Where Python has no
/// NumPy this notes it and returns, unless `GLASSBOX_REQUIRE_NUMPY=1` (CI) makes it a failure.
pub fn numpy_check(path: &std::path::Path, snippet: &str) {
    let script = format!("import sys\nimport numpy as np\npath = sys.argv[1]\n{snippet}\nprint('numpy ok')");
    let out = std::process::Command::new("python3").arg("-c").arg(&script).arg(path).output();
    let required = std::env::var("GLASSBOX_REQUIRE_NUMPY").is_ok_and(|v| v == "1");
    match out {
        Ok(o) if o.status.success() => eprintln!("numpy loaded {}", path.display()),
        Ok(o) if String::from_utf8_lossy(&o.stderr).contains("No module named 'numpy'") && !required => {
            eprintln!("note: python3 has no numpy; skipping the numpy check (GLASSBOX_REQUIRE_NUMPY=1 makes this a failure)");
        }
        Ok(o) => panic!("numpy check of {} failed:\n{}", path.display(), String::from_utf8_lossy(&o.stderr)),
        Err(e) if !required => eprintln!("note: no python3 ({e}); skipping the numpy check"),
        Err(e) => panic!("GLASSBOX_REQUIRE_NUMPY=1 but python3 did not run: {e}"),
    }
}
