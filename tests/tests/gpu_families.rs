//! GPT-2, BERT, Gemma 3, Qwen 2, Qwen 3, OLMo 2 and Phi-3 on the GPU against the CPU
//! reference: every hook of a full pass
//! (learned positions, token types, LayerNorm with biases, post-norm blocks, the MLM head,
//! sandwich norms, QK-norm per head and over all heads, OLMo 2's norms after the sublayers,
//! q/k/v biases, Phi-3's fused weights, two RoPE tables, sliding-window and bidirectional masks), a pass
//! continued from the KV cache, and greedy generation against the fixtures' goldens.
//!
//! No adapter: each test prints a note and passes, unless `GLASSBOX_REQUIRE_GPU=1` (CI).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test here

use glassbox_engine::exec::executor::{Executor, PassOptions, generate};
use glassbox_engine::exec::gpu::GpuOptions;
use glassbox_engine::exec::sampling::SamplingParams;
use glassbox_engine::exec::trace::CaptureFilter;
use glassbox_tests::gpu::*;
use glassbox_tests::tolerance::*;
use glassbox_tests::gpu_or_skip;

const FAMILIES: [&str; 7] = ["tiny-gpt2", "tiny-bert-mlm", "tiny-gemma3", "tiny-qwen2", "tiny-qwen3", "tiny-olmo2", "tiny-phi3"];

#[test]
fn every_hook_of_every_family_matches_the_cpu() {
    let ctx = gpu_or_skip!();
    for name in FAMILIES {
        let model = load(name);
        let ids = input_ids(name);
        let options = PassOptions::capture(CaptureFilter::All);
        let cpu = cpu_pass(&model, &ids, options.clone());
        let mut exec = gpu_exec(&ctx, &model, GpuOptions::default());
        let gpu = exec.forward(&ids, options).unwrap();
        let worst = compare_traces(&gpu, &cpu, PASS_HOOK).unwrap_or_else(|e| panic!("{name}: first diverging hook: {e}"));
        let (err, same) = logits_agree(&gpu, &cpu);
        assert!(f64::from(err) <= GPU_LOGITS_ABS && same, "{name}: logits max abs {err:e}, same argmax everywhere: {same}");
        eprintln!("{name}: {} hooks, worst NMSE {:.2e}, worst max abs {:.2e}, logits max abs {err:.2e}", gpu.len(), worst.nmse, worst.max_abs);
    }
}

#[test]
fn a_pass_continued_from_the_gpu_cache_matches_the_cpu() {
    let ctx = gpu_or_skip!();
    // Gemma 3: the sliding window (4) and both RoPE tables at a position offset; GPT-2: learned
    // positions from the offset on.
    // Qwen 2 (biases), Qwen 3 / OLMo 2 (QK-norm per head / over all heads), Phi-3 (fused).
    for name in ["tiny-gemma3", "tiny-gpt2", "tiny-qwen2", "tiny-qwen3", "tiny-olmo2", "tiny-phi3"] {
        let model = load(name);
        let ids = input_ids(name);
        let split = ids.len() / 2;
        let mut cpu = glassbox_engine::exec::cpu::CpuExecutor::new(model.clone());
        let mut gpu = gpu_exec(&ctx, &model, GpuOptions::default());
        for e in [&mut cpu as &mut dyn Executor, &mut gpu] {
            e.forward(&ids[..split], PassOptions::capture(CaptureFilter::Nothing)).unwrap();
        }
        let want = cpu.forward(&ids[split..], PassOptions::default()).unwrap();
        let got = gpu.forward(&ids[split..], PassOptions::default()).unwrap();
        let worst = compare_traces(&got, &want, PASS_HOOK).unwrap_or_else(|e| panic!("{name}, cached second half: {e}"));
        eprintln!("{name}: cached second half, worst NMSE {:.2e}", worst.nmse);
    }
}

#[test]
fn the_causal_families_generate_the_golden_tokens_on_the_gpu() {
    let ctx = gpu_or_skip!();
    for name in ["tiny-gpt2", "tiny-gemma3", "tiny-qwen2", "tiny-qwen3", "tiny-olmo2", "tiny-phi3"] {
        let model = load(name);
        let (ids, want) = glassbox_tests::golden_generation(name);
        let mut exec = gpu_exec(&ctx, &model, GpuOptions::default());
        let got = generate(&mut exec, &ids, want.len(), SamplingParams::greedy(), &[], &mut |_| {}).unwrap();
        assert_eq!(got, want, "{name}: cached greedy generation on the GPU");
    }
}

/// Edits on the hooks whose value another kernel reuses: an edited norm scale (the output is
/// computed again from it, also where the output replaces its input: BERT's post-norm adds,
/// its embedding LayerNorm, Gemma's sandwich norms), the embedding before Gemma's √d, the
/// position rows before they are added, QK-norm's output, a sliding layer's pattern.
#[test]
fn interventions_and_rounding_on_the_families_match_the_cpu() {
    use glassbox_engine::exec::intervene::{ActivationPrecision, Edit, Intervention};
    use glassbox_engine::{BlockHook as B, HookKey};
    let ctx = gpu_or_skip!();
    let scale = |key: HookKey| Intervention::new(key, Edit::Scale(1.7)).positions(vec![1, 3]);
    let cases: [(&str, Vec<Intervention>); 5] = [
        (
            "tiny-gpt2",
            vec![
                scale(HookKey::PosEmbed),
                scale(HookKey::Block(0, B::Ln1Scale)),
                scale(HookKey::LnFinalScale),
                Intervention::zero(HookKey::Block(1, B::MlpPre)).positions(vec![2]),
            ],
        ),
        (
            "tiny-bert-mlm",
            vec![
                scale(HookKey::EmbedLnScale),
                scale(HookKey::TokenTypeEmbed),
                scale(HookKey::Block(0, B::Ln1Scale)),
                scale(HookKey::Block(1, B::Ln2Scale)),
                scale(HookKey::Block(0, B::ResidMidPreNorm)),
                Intervention::zero_heads(1, vec![2]),
            ],
        ),
        (
            "tiny-gemma3",
            vec![
                scale(HookKey::Embed),
                scale(HookKey::Block(0, B::Ln1PostScale)),
                scale(HookKey::Block(2, B::Ln2PostScale)),
                scale(HookKey::Block(1, B::QNormed)),
                Intervention::zero(HookKey::Block(0, B::Pattern)).positions(vec![4]),
            ],
        ),
        (
            // OLMo 2: QK-norm over all heads, the post-sublayer norms replacing their input.
            "tiny-olmo2",
            vec![
                scale(HookKey::Block(0, B::QNormed)),
                scale(HookKey::Block(1, B::KNormed)),
                scale(HookKey::Block(0, B::Ln1PostScale)),
                scale(HookKey::Block(1, B::Ln2PostScale)),
            ],
        ),
        ("tiny-qwen2", vec![scale(HookKey::Block(0, B::Q)), scale(HookKey::Block(1, B::V)), Intervention::zero_heads(1, vec![1])]),
    ];
    for (name, edits) in cases {
        let model = load(name);
        let ids = input_ids(name);
        let mut gpu = gpu_exec(&ctx, &model, GpuOptions::default());
        let plain = cpu_pass(&model, &ids, PassOptions::default());
        let options = PassOptions { interventions: edits, ..PassOptions::default() };
        let cpu = cpu_pass(&model, &ids, options.clone());
        assert!(cpu.keys().any(|k| cpu.get(k) != plain.get(k)), "{name}: the edits change nothing");
        let got = gpu.forward(&ids, options).unwrap();
        let worst = compare_traces(&got, &cpu, PASS_HOOK).unwrap_or_else(|e| panic!("{name}, edited: {e}"));
        eprintln!("{name}: edited pass, worst NMSE {:.2e}", worst.nmse);
        for precision in [ActivationPrecision::F16, ActivationPrecision::Bf16] {
            let options = PassOptions { activations: precision, ..PassOptions::default() };
            let cpu = cpu_pass(&model, &ids, options.clone());
            gpu.reset();
            let got = gpu.forward(&ids, options).unwrap();
            let worst = compare_traces_with(&got, &cpu, |k| if k == HookKey::Probs { ROUNDED_PROBS } else { ROUNDED_PASS_HOOK })
                .unwrap_or_else(|e| panic!("{name}, {}: {e}", precision.name()));
            eprintln!("{name}: {} activations, worst NMSE {:.2e}", precision.name(), worst.nmse);
        }
        // One step per submit gives the same trace as one submit for the whole pass.
        gpu.reset();
        gpu.begin(&ids, PassOptions::default()).unwrap();
        while gpu.step().unwrap().is_some() {}
        compare_traces(gpu.trace(), &plain, PASS_HOOK).unwrap_or_else(|e| panic!("{name}, step by step: {e}"));
    }
}

#[test]
fn f16_weights_agree_with_f32_on_the_families() {
    use glassbox_engine::HookKey;
    let ctx = gpu_or_skip!();
    for options in f16_options(&ctx) {
        for name in FAMILIES {
            let model = load(name);
            let ids = input_ids(name);
            let capture = PassOptions::capture(CaptureFilter::keys([HookKey::Logits]));
            let cpu = cpu_pass(&model, &ids, capture.clone());
            let f16 = gpu_exec(&ctx, &model, options).forward(&ids, capture).unwrap();
            let (per_pos, kl) = f16_agreement(&cpu, &f16);
            let agree = per_pos.iter().filter(|&&x| x).count();
            eprintln!("{name}, f16 {options:?}: top-1 {agree}/{}, mean KL {kl:.2e}", per_pos.len());
            assert!(agree as f64 / per_pos.len() as f64 >= F16_TOP1_AGREEMENT && kl <= F16_MEAN_KL, "{name}: f16 weights, top-1 {agree}/{}, mean KL {kl:e}", per_pos.len());
        }
    }
}

#[test]
fn family_weights_split_across_buffers_give_the_same_pass() {
    let ctx = gpu_or_skip!();
    // 4 KiB per buffer: the embedding, position and token-type tables, the MLM dense and the
    // MLP matrices each become several chunks.
    let options = GpuOptions { max_chunk_bytes: Some(4096), max_readback_bytes: Some(16384), ..GpuOptions::default() };
    for name in FAMILIES {
        let model = load(name);
        let ids = input_ids(name);
        let gpu = gpu_exec(&ctx, &model, options).forward(&ids, PassOptions::default()).unwrap();
        let cpu = cpu_pass(&model, &ids, PassOptions::default());
        compare_traces(&gpu, &cpu, PASS_HOOK).unwrap_or_else(|e| panic!("{name}, chunked weights: {e}"));
    }
}
