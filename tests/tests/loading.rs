//! Checkpoints in the other shapes real Llama-family folders come in: F16/BF16 weights,
//! sharded safetensors with an index, and the transformers 4.x config form.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;

use glassbox_engine::exec::cpu::CpuExecutor;
use glassbox_engine::exec::executor::{Executor, PassOptions};
use glassbox_engine::exec::trace::CaptureFilter;
use glassbox_engine::Model;
use glassbox_tests::{fixtures_dir, max_abs_diff, read_goldens};
use safetensors::Dtype;

type Tensors = Vec<(String, Vec<usize>, Vec<f32>)>;

fn read_tensors(path: &Path) -> Tensors {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut out: Tensors = st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.shape().to_vec(), v.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn write_tensors(path: &Path, tensors: &[(String, Vec<usize>, Vec<f32>)], dtype: Dtype) {
    let raw: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(n, s, v)| {
            let bytes = match dtype {
                Dtype::F16 => v.iter().flat_map(|x| half::f16::from_f32(*x).to_le_bytes()).collect(),
                Dtype::BF16 => v.iter().flat_map(|x| half::bf16::from_f32(*x).to_le_bytes()).collect(),
                _ => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            };
            (n.clone(), s.clone(), bytes)
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = raw
        .iter()
        .map(|(n, s, b)| (n.clone(), safetensors::tensor::TensorView::new(dtype, s.clone(), b).unwrap()))
        .collect();
    std::fs::write(path, safetensors::serialize(views, None).unwrap()).unwrap();
}

fn logits(dir: &Path, ids: &[u32]) -> Vec<f32> {
    let model = Arc::new(Model::load(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())));
    let mut exec = CpuExecutor::new(model);
    let trace = exec.forward(ids, PassOptions::capture(CaptureFilter::All)).unwrap();
    trace.get(glassbox_engine::HookKey::Logits).unwrap().data.iter().copied().collect()
}

fn golden_ids(name: &str) -> Vec<u32> {
    let g = read_goldens(&fixtures_dir().join(name).join("golden.safetensors")).unwrap();
    g["input_ids"].values.iter().map(|&v| v as u32).collect()
}

#[test]
fn half_precision_checkpoints_load_and_stay_close() {
    let name = "tiny-gqa-tied";
    let ids = golden_ids(name);
    let reference = logits(&fixtures_dir().join(name), &ids);
    let tensors = read_tensors(&fixtures_dir().join(name).join("model.safetensors"));
    for dtype in [Dtype::F16, Dtype::BF16] {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::copy(fixtures_dir().join(name).join("config.json"), tmp.path().join("config.json")).unwrap();
        write_tensors(&tmp.path().join("model.safetensors"), &tensors, dtype);
        let ours = logits(tmp.path(), &ids);
        let err = max_abs_diff(&ours, &reference);
        // Rounding the weights moves logits a little, never wildly.
        assert!(err > 0.0 && err < 0.3, "{dtype:?}: max logit change {err}");
    }
}

#[test]
fn sharded_checkpoint_with_index_loads_identically() {
    let name = "tiny-mha-untied";
    let ids = golden_ids(name);
    let reference = logits(&fixtures_dir().join(name), &ids);
    let tensors = read_tensors(&fixtures_dir().join(name).join("model.safetensors"));
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(fixtures_dir().join(name).join("config.json"), tmp.path().join("config.json")).unwrap();
    let (a, b) = tensors.split_at(tensors.len() / 2);
    let shards = [("model-00001-of-00002.safetensors", a), ("model-00002-of-00002.safetensors", b)];
    let mut weight_map = serde_json::Map::new();
    for (file, part) in shards {
        write_tensors(&tmp.path().join(file), part, Dtype::F32);
        for (n, _, _) in part {
            weight_map.insert(n.clone(), serde_json::json!(file));
        }
    }
    let index = serde_json::json!({"metadata": {}, "weight_map": weight_map});
    std::fs::write(tmp.path().join("model.safetensors.index.json"), index.to_string()).unwrap();
    assert_eq!(logits(tmp.path(), &ids), reference);
}

#[test]
fn transformers_4x_config_form_gives_the_same_model() {
    let name = "tiny-llama31-rope-scaling";
    let ids = golden_ids(name);
    let reference = logits(&fixtures_dir().join(name), &ids);
    let text = std::fs::read_to_string(fixtures_dir().join(name).join("config.json")).unwrap();
    let mut config: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut rope = config.as_object_mut().unwrap().remove("rope_parameters").unwrap();
    config["rope_theta"] = rope.as_object_mut().unwrap().remove("rope_theta").unwrap();
    let kind = rope.as_object_mut().unwrap().remove("rope_type").unwrap();
    rope["type"] = kind;
    config["rope_scaling"] = rope;
    config["torch_dtype"] = config.as_object_mut().unwrap().remove("dtype").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("config.json"), config.to_string()).unwrap();
    std::fs::copy(fixtures_dir().join(name).join("model.safetensors"), tmp.path().join("model.safetensors")).unwrap();
    assert_eq!(logits(tmp.path(), &ids), reference);
}
