//! A `Q4_K_M`-style Llama GGUF (Q4_K, Q5_K and Q6_K matrices, F32 norms) built with the
//! engine's GGUF writer converts, every tensor equals an independent reference
//! dequantization bit for bit, and the model runs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use glassbox_engine::experiments::analysis::last_logits;
use glassbox_engine::exec::cpu::CpuExecutor;
use glassbox_engine::exec::executor::{Executor, PassOptions};
use glassbox_engine::load::gguf::{hf_tensor_name, unpermute_rows};
use glassbox_engine::exec::trace::CaptureFilter;
use glassbox_engine::Model;
use glassbox_tests::kquant::{HEADS, HIDDEN, KV_HEADS, q4_k_m_llama};

#[test]
fn q4_k_m_llama_converts_matches_the_reference_dequantization_and_runs() {
    let (gguf_bytes, raw) = q4_k_m_llama();
    let tmp = tempfile::tempdir().unwrap();
    let gguf = tmp.path().join("tiny-Q4_K_M.gguf");
    std::fs::write(&gguf, &gguf_bytes).unwrap();
    let out = tmp.path().join("hf");
    glassbox_engine::load::fetch::convert_to_folder(&gguf, &out, &mut |_| {}).unwrap();

    let st_bytes = std::fs::read(out.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&st_bytes).unwrap();
    let mut compared = 0;
    for (name, ty, data) in &raw {
        let mut want = glassbox_tests::kquant::reference_dequant(*ty, data);
        if name.ends_with("attn_q.weight") {
            want = unpermute_rows(&want, HIDDEN as usize, HEADS as usize);
        } else if name.ends_with("attn_k.weight") {
            want = unpermute_rows(&want, HIDDEN as usize, KV_HEADS as usize);
        }
        let hf = hf_tensor_name(name).unwrap();
        let view = st.tensor(&hf).unwrap();
        let got: Vec<u32> = view
            .data()
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let want: Vec<u32> = want.iter().map(|v| v.to_bits()).collect();
        assert_eq!(got.len(), want.len(), "{hf}");
        if let Some(i) = got.iter().zip(&want).position(|(a, b)| a != b) {
            panic!(
                "{hf} (ggml type {ty}) element {i}: {} != reference {}",
                f32::from_bits(got[i]),
                f32::from_bits(want[i])
            );
        }
        compared += 1;
    }
    assert_eq!(compared, raw.len());

    let note = std::fs::read_to_string(out.join("glassbox_source.json")).unwrap();
    assert!(note.contains("Q4_K weights"), "{note}");

    let model = Arc::new(Model::load(&out).unwrap());
    assert!(model.warnings().is_empty(), "{:?}", model.warnings());
    let mut exec = CpuExecutor::new(model.clone());
    let ids = model.tokenizer.as_ref().unwrap().encode("ab 12 ab").unwrap();
    assert!(ids.len() >= 3, "{ids:?}");
    let trace = exec
        .forward(&ids, PassOptions::capture(CaptureFilter::All))
        .unwrap();
    let logits = last_logits(&trace).unwrap();
    assert_eq!(logits.len(), model.config.vocab_size);
    assert!(logits.iter().all(|v| v.is_finite()), "{logits:?}");
    let spread = logits.iter().cloned().fold(f32::MIN, f32::max)
        - logits.iter().cloned().fold(f32::MAX, f32::min);
    assert!(spread > 1e-4, "the head computes something: {logits:?}");
}
