//! Qwen 2, Qwen 3, OLMo 2 and Phi-3 beside Llama: the tiny fixtures (transformers 5.24, f32,
//! eager) hook by hook on the CPU reference, greedy generation with and without the KV cache,
//! and the one-line errors for a fused weight or a QK-norm weight the config cannot split.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use glassbox_engine::exec::cpu::CpuExecutor;
use glassbox_engine::exec::executor::{Executor, PassOptions, generate};
use glassbox_engine::exec::sampling::SamplingParams;
use glassbox_engine::exec::trace::CaptureFilter;
use glassbox_engine::load::arch::{Family, NormPlacement};
use glassbox_engine::program::step::Program;
use glassbox_engine::{BlockHook, HookKey, Model};
use glassbox_tests::{Golden, first_divergence, fixtures_dir, read_goldens};

const FAMILIES: [(&str, Family); 4] =
    [("tiny-qwen2", Family::Qwen2), ("tiny-qwen3", Family::Qwen3), ("tiny-olmo2", Family::Olmo2), ("tiny-phi3", Family::Phi3)];

fn load(name: &str) -> Arc<Model> {
    Arc::new(Model::load(&fixtures_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}")))
}

/// OLMo 2's golden `q_norm`/`k_norm` outputs are `[T, heads·head_dim]` (its norm spans the
/// heads); Glassbox keeps q and k as `[T, heads, head_dim]` like `hook_q`: same values, same
/// order, so only the shape is split.
fn goldens(name: &str, model: &Model) -> BTreeMap<String, Golden> {
    let mut g = read_goldens(&fixtures_dir().join(name).join("golden.safetensors")).unwrap();
    let d_head = model.config.d_head();
    for (_, t) in g.iter_mut().filter(|(n, _)| n.ends_with("hook_q_normed") || n.ends_with("hook_k_normed")) {
        if let [pos, width] = t.shape[..] {
            t.shape = vec![pos, width / d_head, d_head];
        }
    }
    g
}

fn ids_of(g: &BTreeMap<String, Golden>) -> Vec<u32> {
    g["input_ids"].values.iter().map(|&v| v as u32).collect()
}

#[test]
fn every_hook_matches_transformers_on_qwen2_qwen3_olmo2_and_phi3() {
    for (name, family) in FAMILIES {
        let model = load(name);
        assert_eq!(model.arch.family, family, "{name}");
        let goldens = goldens(name, &model);
        glassbox_tests::assert_every_hook_matches(name, model, &goldens, 20);
    }
}

#[test]
fn greedy_generation_matches_with_and_without_cache() {
    for (name, _) in FAMILIES {
        let model = load(name);
        let (ids, want) = glassbox_tests::golden_generation(name);
        let mut exec = CpuExecutor::new(model.clone());
        let cached = generate(&mut exec, &ids, want.len(), SamplingParams::greedy(), &[], &mut |_| {}).unwrap();
        assert_eq!(cached, want, "{name}: cached generation");
        let uncached = glassbox_engine::exec::executor::generate_uncached(&mut exec, &ids, want.len(), &[]).unwrap();
        assert_eq!(uncached, want, "{name}: uncached generation");
    }
}

/// Each family's difference is in its program: Qwen 3's and OLMo 2's QK-norm, OLMo 2's norms
/// after the sublayers and none before; Phi-3's fused weights are read as q, k, v (gate, up).
#[test]
fn each_family_program_carries_its_difference() {
    let ops = |name: &str| Program::of(&load(name).config).steps().iter().filter(|s| s.layer() == Some(0)).map(|s| s.to_string()).collect::<Vec<_>>().join(" ");
    let qwen3 = ops("tiny-qwen3");
    assert!(qwen3.contains("blocks.0.qk_norm") && qwen3.contains("blocks.0.ln1"), "{qwen3}");
    let olmo = ops("tiny-olmo2");
    assert!(olmo.contains("blocks.0.qk_norm") && olmo.contains("blocks.0.ln1_post") && olmo.contains("blocks.0.ln2_post"), "{olmo}");
    assert!(!olmo.contains("blocks.0.ln1 ") && !olmo.contains("blocks.0.ln2 "), "OLMo 2 has no pre-norm: {olmo}");
    assert_eq!(load("tiny-olmo2").arch.placement, NormPlacement::PostSublayer);
    let phi = load("tiny-phi3");
    let a = &phi.weights.layers[0].self_attn;
    let (q, kv, d) = (phi.config.q_dim(), phi.config.kv_dim(), phi.config.d_model());
    assert_eq!((a.q_proj.dim(), a.k_proj.dim(), a.v_proj.dim()), ((q, d), (kv, d), (kv, d)));
    assert!(a.q_proj.dtype_name().contains("mapped"), "the fused weight is read in place, not copied: {}", a.q_proj.dtype_name());
    let qwen2 = load("tiny-qwen2");
    let bias = qwen2.weights.layers[0].self_attn.bias.as_ref().expect("Qwen 2 has q/k/v biases");
    assert!(bias.o_proj.is_none(), "Qwen 2's o_proj has no bias");
}

/// OLMo 2's hooks after its post-sublayer norms: what is added is the normed output.
#[test]
fn olmo2_adds_the_normed_sublayer_output() {
    let model = load("tiny-olmo2");
    let goldens = goldens("tiny-olmo2", &model);
    let mut exec = CpuExecutor::new(model.clone());
    let trace = exec.forward(&ids_of(&goldens), PassOptions::capture(CaptureFilter::All)).unwrap();
    let get = |h| trace.get(HookKey::Block(0, h)).unwrap().data.clone();
    let sum = &get(BlockHook::ResidPre) + &get(BlockHook::Ln1PostNormalized);
    let mid = get(BlockHook::ResidMid);
    let err = sum.iter().zip(mid.iter()).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(err < 1e-5, "resid_mid = resid_pre + ln1_post: {err}");
}

fn copy_with(name: &str, edit: impl Fn(&str, &[usize], Vec<u8>) -> (Vec<usize>, Vec<u8>)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = fixtures_dir().join(name);
    std::fs::copy(src.join("config.json"), dir.path().join("config.json")).unwrap();
    let bytes = std::fs::read(src.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let owned: Vec<(String, Vec<usize>, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(n, t)| {
            let (shape, data) = edit(&n, t.shape(), t.data().to_vec());
            (n, shape, data)
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = owned
        .iter()
        .map(|(n, shape, data)| (n.clone(), safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), data).unwrap()))
        .collect();
    safetensors::serialize_to_file(views, None, &dir.path().join("model.safetensors")).unwrap();
    dir
}

/// Drops the last `rows` rows of tensors whose name ends with `leaf` (f32, `[rows, cols]` or `[len]`).
fn shorten(leaf: &'static str, rows: usize) -> impl Fn(&str, &[usize], Vec<u8>) -> (Vec<usize>, Vec<u8>) {
    move |name, shape, data| {
        if !name.ends_with(leaf) {
            return (shape.to_vec(), data);
        }
        let mut shape = shape.to_vec();
        let row_bytes = data.len() / shape[0];
        shape[0] -= rows;
        (shape.clone(), data[..shape[0] * row_bytes].to_vec())
    }
}

#[test]
fn a_fused_weight_that_does_not_split_is_a_one_line_error_naming_it() {
    for (leaf, what) in [("qkv_proj.weight", "q, k and v"), ("gate_up_proj.weight", "gate and up")] {
        let dir = copy_with("tiny-phi3", shorten(leaf, 16));
        let err = Model::load(dir.path()).err().expect("a fused weight of the wrong size must not load").to_string();
        assert!(err.contains(leaf) && err.contains(what) && err.contains("config.json") && !err.contains('\n'), "{err}");
    }
}

#[test]
fn a_qk_norm_weight_of_the_wrong_width_is_a_one_line_error_naming_it() {
    for (name, span) in [("tiny-qwen3", "one head"), ("tiny-olmo2", "all heads")] {
        let dir = copy_with(name, shorten("k_norm.weight", 8));
        let err = Model::load(dir.path()).err().expect("a QK-norm weight of the wrong width must not load").to_string();
        assert!(err.contains("k_norm.weight") && err.contains(span) && err.contains("head_dim") && !err.contains('\n'), "{name}: {err}");
    }
}

/// The GGUF name gguf-py gives a Hugging Face tensor of `arch` (the converter's map, read
/// forwards), for building each fixture's GGUF.
fn gguf_name(arch: &str, hf: &str) -> String {
    let fixed = [("model.embed_tokens.weight", "token_embd.weight"), ("model.norm.weight", "output_norm.weight"), ("lm_head.weight", "output.weight")];
    if let Some((_, g)) = fixed.iter().find(|(h, _)| *h == hf) {
        return g.to_string();
    }
    let rest = hf.strip_prefix("model.layers.").unwrap();
    let (layer, part) = rest.split_once('.').unwrap();
    let (base, kind) = part.rsplit_once('.').unwrap();
    let g = match (arch, base) {
        ("olmo2", "post_attention_layernorm") => "post_attention_norm",
        (_, "post_attention_layernorm") => "ffn_norm",
        (_, "post_feedforward_layernorm") => "post_ffw_norm",
        (_, "input_layernorm") => "attn_norm",
        (_, "self_attn.q_proj") => "attn_q",
        (_, "self_attn.k_proj") => "attn_k",
        (_, "self_attn.v_proj") => "attn_v",
        (_, "self_attn.qkv_proj") => "attn_qkv",
        (_, "self_attn.o_proj") => "attn_output",
        (_, "self_attn.q_norm") => "attn_q_norm",
        (_, "self_attn.k_norm") => "attn_k_norm",
        (_, "mlp.gate_proj") => "ffn_gate",
        (_, "mlp.up_proj" | "mlp.gate_up_proj") => "ffn_up",
        (_, "mlp.down_proj") => "ffn_down",
        other => panic!("no GGUF name for {other:?}"),
    };
    format!("blk.{layer}.{g}.{kind}")
}

/// The fixture as llama.cpp would write it: f32 tensors under gguf-py's names (no Q/K
/// permutation for these families), `{arch}.*` metadata, a byte-level BPE vocabulary.
fn fixture_gguf(name: &str, arch: &str) -> glassbox_engine::load::gguf::builder::GgufBuilder {
    use glassbox_engine::load::gguf::builder::GgufBuilder;
    let c = glassbox_engine::LlamaConfig::from_file(&fixtures_dir().join(name).join("config.json")).unwrap();
    let key = |k: &str| format!("{arch}.{k}");
    let tokens: Vec<String> = (0..c.vocab_size).map(|i| format!("t{i}")).collect();
    let tokens: Vec<&str> = tokens.iter().map(String::as_str).collect();
    let mut b = GgufBuilder::new()
        .kv_str("general.architecture", arch)
        .kv_u32(&key("block_count"), c.n_layers() as u32)
        .kv_u32(&key("context_length"), c.max_position_embeddings as u32)
        .kv_u32(&key("embedding_length"), c.d_model() as u32)
        .kv_u32(&key("feed_forward_length"), c.d_mlp() as u32)
        .kv_u32(&key("attention.head_count"), c.n_heads() as u32)
        .kv_u32(&key("attention.head_count_kv"), c.n_kv_heads() as u32)
        .kv_u32(&key("attention.key_length"), c.d_head() as u32)
        .kv_f32(&key("rope.freq_base"), c.rope_theta() as f32)
        .kv_f32(&key("attention.layer_norm_rms_epsilon"), c.eps())
        .kv_str("tokenizer.ggml.model", "gpt2")
        .kv_str("tokenizer.ggml.pre", if arch.starts_with("qwen") { "qwen2" } else { "gpt-2" })
        .kv_str_array("tokenizer.ggml.tokens", &tokens)
        .kv_str_array("tokenizer.ggml.merges", &[]);
    let bytes = std::fs::read(fixtures_dir().join(name).join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    for (hf, t) in st.tensors() {
        let values: Vec<f32> = t.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        let dims: Vec<u64> = t.shape().iter().rev().map(|&d| d as u64).collect();
        b = b.f32_tensor(&gguf_name(arch, &hf), &dims, &values);
    }
    b
}

/// Each family from a GGUF: converted to the Hugging Face layout (names, fused weights kept,
/// no permutation, `{arch}.*` metadata into config.json), and loaded natively, both matching
/// transformers hook by hook.
#[test]
fn each_family_converted_from_gguf_matches_transformers() {
    for ((name, family), arch) in FAMILIES.into_iter().zip(["qwen2", "qwen3", "olmo2", "phi3"]) {
        let dir = tempfile::tempdir().unwrap();
        let gguf = dir.path().join(format!("{name}.gguf"));
        std::fs::write(&gguf, fixture_gguf(name, arch).build()).unwrap();
        let out = dir.path().join("hf");
        std::fs::create_dir(&out).unwrap();
        glassbox_engine::load::gguf::convert_gguf_to_hf(&gguf, &out, &mut |_, _| {}).unwrap_or_else(|e| panic!("{name}: {e}"));
        let converted = Model::load(&out).unwrap_or_else(|e| panic!("{name}: {e}"));
        // And natively: the GGUF's tensors in place (Phi-3's fused ones as row ranges).
        let native = Model::load_with(&gguf, glassbox_engine::WeightsMode::Native).unwrap_or_else(|e| panic!("{name} natively: {e}"));
        for (how, model) in [("converted", converted), ("native", native)] {
            let model = Arc::new(model);
            assert_eq!(model.arch.family, family, "{name}");
            let goldens = goldens(name, &model);
            let trace = CpuExecutor::new(model.clone()).forward(&ids_of(&goldens), PassOptions::capture(CaptureFilter::All)).unwrap();
            if let Some(diff) = first_divergence(&trace, &goldens, glassbox_tests::tolerance::FIXTURE_HOOK_REL as f32) {
                panic!("{name} from GGUF ({how}): first diverging hook: {diff}");
            }
        }
    }
}

/// longrope's factors load (`longrope.rs`); half of them, or the wrong count, is refused by name.
#[test]
fn a_phi3_gguf_with_incomplete_longrope_factors_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let gguf = dir.path().join("phi3.gguf");
    let base = || fixture_gguf("tiny-phi3", "phi3").kv_u32("phi3.rope.scaling.original_context_length", 16);
    let cases = [
        (base().f32_tensor("rope_factors_long.weight", &[8], &[1.0; 8]), "rope_factors_short"),
        (base().f32_tensor("rope_factors_long.weight", &[8], &[1.0; 8]).f32_tensor("rope_factors_short.weight", &[7], &[1.0; 7]), "rope_factors_short"),
    ];
    for (file, name) in cases {
        std::fs::write(&gguf, file.build()).unwrap();
        let err = glassbox_engine::load::gguf::convert_gguf_to_hf(&gguf, &dir.path().join("hf"), &mut |_, _| {}).unwrap_err().to_string();
        assert!(err.contains(name) && !err.contains('\n'), "{err}");
    }
}
