//! Seeded mutation fuzzing on stable Rust for the four loaders: the GGUF reader and
//! converter (Llama and Gemma 3), safetensors loading (Llama, Gemma 3, GPT-2 and BERT weights,
//! each against its family's config), config.json parsing, and tokenizer loading. Each target
//! starts from valid seed files (plus the broken ones of RELIABILITY.md rows 1–17), applies
//! random byte- and JSON-level mutations, and runs the loader under `catch_unwind`: a panic
//! is a bug, and its input is saved to reproduce it. Errors are the expected outcome.
//!
//! CI runs a fixed number of iterations (`tests/fuzz_quick.rs`); long runs use
//! `cargo run --release -p glassbox-tests --example fuzz -- <target> <seconds>`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use glassbox_engine::Model;
use glassbox_engine::load::config::LlamaConfig;
use glassbox_engine::load::gguf::builder::{q5_blocks, tiny_gemma3, tiny_llama};
use glassbox_engine::load::gguf::{
    GgmlType, GgufFile, build_config_json, build_tokenizer_config_json, build_tokenizer_json,
    convert_gguf_to_hf, planned_tensors, unpermute_rows,
};
use glassbox_engine::load::tokenizer::{ChatMessage, Tokenizer};

use crate::fixtures_dir;

pub const TARGETS: [Target; 5] = [
    Target::Gguf,
    Target::Native,
    Target::Safetensors,
    Target::Config,
    Target::Tokenizer,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Gguf,
    /// A GGUF loaded natively (`WeightsMode::Native`: blocks in place) and run.
    Native,
    Safetensors,
    Config,
    Tokenizer,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::Gguf => "gguf",
            Target::Native => "native",
            Target::Safetensors => "safetensors",
            Target::Config => "config",
            Target::Tokenizer => "tokenizer",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        TARGETS.into_iter().find(|t| t.name() == name)
    }

    fn is_text(self) -> bool {
        matches!(self, Target::Config | Target::Tokenizer)
    }
}

/// xorshift64*: small, fast, reproducible from its seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0xd1b5_4a32_d192_ed03 | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next_u64() % n as u64) as usize }
    }
    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

const INTERESTING_U64: [u64; 12] = [
    0,
    1,
    7,
    8,
    31,
    32,
    255,
    0x7fff_ffff,
    0xffff_ffff,
    1 << 40,
    (1 << 42) + 1,
    u64::MAX,
];

const JSON_TOKENS: [&str; 22] = [
    "null", "true", "false", "0", "-1", "1e9", "1e308", "-0.0", "18446744073709551616",
    "4294967296", "\"\"", "[]", "{}", "\"BPE\"", "\"ByteLevel\"", "\"##\"", "\"a b\"", ",", ":",
    "{", "]", "\"\\u0000\"",
];

/// One mutated copy of `input`; `other` is a second seed to splice from.
pub fn mutate(input: &[u8], other: &[u8], rng: &mut Rng, text: bool, focus: usize) -> Vec<u8> {
    let mut out = input.to_vec();
    let rounds = 1 + rng.below(if text { 2 } else { 4 });
    for _ in 0..rounds {
        // Text formats: mostly swap one JSON value, which keeps the file parseable and
        // reaches the checks behind the parser.
        if text && rng.chance(2) {
            let at = rng.below(out.len().max(1));
            replace_json_token(&mut out, at, rng);
            continue;
        }
        // Most mutations land in the first `focus` bytes (headers and tables), where the
        // parsing is; the rest anywhere.
        let span = if rng.chance(5) || focus == 0 { out.len() } else { focus.min(out.len()) };
        let at = rng.below(span.max(1));
        match rng.below(if text { 12 } else { 9 }) {
            0 if !out.is_empty() => {
                let i = at.min(out.len() - 1);
                out[i] ^= 1 << rng.below(8);
            }
            1 if !out.is_empty() => {
                let i = at.min(out.len() - 1);
                out[i] = [0, 0xff, 0x7f, 0x80, b'"', b'\\'][rng.below(6)];
            }
            2 => {
                let v = INTERESTING_U64[rng.below(INTERESTING_U64.len())];
                let width = if rng.chance(2) { 4 } else { 8 };
                let bytes = v.to_le_bytes();
                for (i, b) in bytes.iter().take(width).enumerate() {
                    if let Some(slot) = out.get_mut(at + i) {
                        *slot = *b;
                    }
                }
            }
            3 => {
                let len = rng.below(64).min(out.len().saturating_sub(at));
                out.drain(at..at + len);
            }
            4 => {
                let len = 1 + rng.below(32);
                let start = rng.below(out.len().max(1));
                let chunk: Vec<u8> = out.iter().skip(start).take(len).copied().collect();
                let at = at.min(out.len());
                out.splice(at..at, chunk);
            }
            5 => out.truncate(at),
            6 if !other.is_empty() => {
                let start = rng.below(other.len());
                let len = 1 + rng.below(256);
                let chunk: Vec<u8> = other.iter().skip(start).take(len).copied().collect();
                let end = (at + chunk.len()).min(out.len());
                let at = at.min(out.len());
                out.splice(at..end, chunk);
            }
            7 => {
                let n = 1 + rng.below(8);
                let at = at.min(out.len());
                let junk: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
                out.splice(at..at, junk);
            }
            8 => {
                // A number read as a length or count nearby: make it huge or zero.
                if let Some(slot) = out.get_mut(at) {
                    *slot = if rng.chance(2) { 0 } else { 0xff };
                }
            }
            9 | 10 => replace_json_token(&mut out, at, rng),
            _ => {
                // Repeat a region: deep nesting, long strings.
                let len = 1 + rng.below(16).min(out.len().saturating_sub(at));
                let chunk: Vec<u8> = out.iter().skip(at).take(len).copied().collect();
                let times = 1 + rng.below(64);
                let at = at.min(out.len());
                let mut rep = Vec::with_capacity(chunk.len() * times);
                for _ in 0..times {
                    rep.extend(&chunk);
                }
                out.splice(at..at, rep);
            }
        }
    }
    out
}

/// Replaces the JSON scalar (number, string, literal) at or after `at` with a hostile one.
fn replace_json_token(out: &mut Vec<u8>, at: usize, rng: &mut Rng) {
    let Some(start) = (at..out.len()).find(|&i| {
        out[i].is_ascii_digit() || out[i] == b'"' || out[i] == b'-' || out[i] == b't' || out[i] == b'n'
    }) else {
        return;
    };
    let end = if out[start] == b'"' {
        let mut i = start + 1;
        while i < out.len() && out[i] != b'"' {
            i += if out[i] == b'\\' { 2 } else { 1 };
        }
        (i + 1).min(out.len())
    } else {
        (start..out.len())
            .find(|&i| matches!(out[i], b',' | b'}' | b']' | b' ' | b'\n'))
            .unwrap_or(out.len())
    };
    let token = JSON_TOKENS[rng.below(JSON_TOKENS.len())].as_bytes().to_vec();
    out.splice(start..end, token);
}

/// A JSON-level change to a safetensors header, with the length prefix kept true, so the
/// mutation reaches the offset/shape/dtype checks instead of the JSON parser.
fn mutate_safetensors_header(input: &[u8], rng: &mut Rng) -> Vec<u8> {
    let Some(n) = input
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes)
        .and_then(|n| usize::try_from(n).ok())
        .filter(|&n| n <= input.len() - 8)
    else {
        return input.to_vec();
    };
    let mut header = input[8..8 + n].to_vec();
    for _ in 0..1 + rng.below(2) {
        let at = rng.below(header.len().max(1));
        replace_json_token(&mut header, at, rng);
    }
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend(header);
    out.extend(&input[8 + n..]);
    out
}

/// Seed inputs for `target`: valid files and the RELIABILITY.md broken ones.
pub fn seeds(target: Target) -> Vec<Vec<u8>> {
    match target {
        Target::Native => {
            // The GGUF seeds, and Q and K (which the loader un-permutes) as Q8_0 blocks.
            let q8 = |rows: usize| -> Vec<u8> {
                (0..rows).flat_map(|r| {
                    let mut b = glassbox_engine::load::gguf::builder::f16_bytes(0.01 + r as f32 * 0.001).to_vec();
                    b.extend((0..32).map(|i| (i * 7 + r) as u8));
                    b
                }).collect()
            };
            let mut s = seeds(Target::Gguf);
            s.push(
                tiny_llama(false)
                    .replace_tensor("blk.0.attn_q.weight", &[32, 32], GgmlType::Q8_0.id(), &q8(32))
                    .replace_tensor("blk.0.attn_k.weight", &[32, 16], GgmlType::Q8_0.id(), &q8(16))
                    .build(),
            );
            s
        }
        Target::Gguf => {
            let mut s = vec![
                tiny_llama(false).build(),
                tiny_llama(true).build(),
                crate::kquant::q4_k_m_llama().0,
                tiny_llama(false).set_f32("llama.rope.freq_base", f32::INFINITY).build(),
                tiny_llama(false).build_with_counts(u64::MAX, 3),
            ];
            // Row 15: token types that do not match the tokens.
            s.push(
                tiny_llama(false)
                    .remove_kv("tokenizer.ggml.token_type")
                    .kv_i32_array("tokenizer.ggml.token_type", &[3, 1])
                    .build(),
            );
            // Gemma 3: the converter's second architecture (its names, norm shift, config and
            // SentencePiece-derived tokenizer), with Q5_0 and Q5_1 matrices, and without the
            // QK norms Llama has no counterpart for.
            let q5 = |ty: GgmlType, name: &str| {
                tiny_gemma3().replace_tensor(name, &[32, 8], ty.id(), &q5_blocks(256, ty == GgmlType::Q5_1))
            };
            s.extend([
                tiny_gemma3().build(),
                q5(GgmlType::Q5_0, "blk.0.ffn_up.weight").build(),
                q5(GgmlType::Q5_1, "blk.1.ffn_gate.weight").build(),
                tiny_gemma3().remove_tensor("blk.0.attn_q_norm.weight").build(),
            ]);
            s
        }
        Target::Safetensors => {
            let weights = |family: &str| {
                std::fs::read(fixtures_dir().join(family).join("model.safetensors")).unwrap_or_default()
            };
            let good = weights("tiny-gqa-tied");
            let mut truncated = good.clone();
            truncated.truncate(good.len() / 2);
            // Row 1: a header length past the file.
            let mut long_header = good.clone();
            if long_header.len() >= 8 {
                long_header[..8].copy_from_slice(&(u64::MAX / 3).to_le_bytes());
            }
            let mut s = vec![good, truncated, long_header];
            // Every other family's weights, loaded against its own config (`weights_family`).
            s.extend(WEIGHT_FAMILIES[1..].iter().map(|(family, _)| weights(family)));
            s
        }
        Target::Config => [
            "tiny-gqa-tied",
            "tiny-mha-untied",
            "tiny-llama31-rope-scaling",
            "tiny-gemma3",
            "tiny-gpt2",
            "tiny-bert-mlm",
            "tiny-qwen2",
            "tiny-qwen3",
            "tiny-olmo2",
            "tiny-phi3",
        ]
            .iter()
            .map(|n| std::fs::read(fixtures_dir().join(n).join("config.json")).unwrap_or_default())
            .chain([br#"{"vocab_size": 97, "hidden_size": 64, "intermediate_size": 160,
                "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
                "rope_theta": 10000.0, "rope_scaling": {"type": "linear", "factor": 2.0},
                "tie_word_embeddings": true}"#
                .to_vec()])
            .collect(),
        Target::Tokenizer => tokenizer_seeds(),
    }
}

fn tokenizer_seeds() -> Vec<Vec<u8>> {
    let file = GgufFile::from_bytes(Path::new("seed.gguf"), tiny_llama(false).build());
    let tiny = file
        .ok()
        .and_then(|f| build_tokenizer_json(&f).ok())
        .map(|v| v.to_string().into_bytes())
        .unwrap_or_default();
    let prefixed = serde_json::json!({
        "model": {"type": "BPE", "vocab": {"a": 0, "##b": 1, "ab": 2, "c": 3},
                  "merges": [["a", "##b"]], "continuing_subword_prefix": "##"},
        "decoder": {"type": "BPEDecoder", "suffix": "</w>"},
        "pre_tokenizer": {"type": "Whitespace"}
    })
    .to_string()
    .into_bytes();
    let wordpiece = serde_json::json!({
        "model": {"type": "WordPiece", "vocab": {"[UNK]": 0, "a": 1, "##b": 2},
                  "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100},
        "normalizer": {"type": "Lowercase"},
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true}
    })
    .to_string()
    .into_bytes();
    vec![tiny, prefixed, wordpiece]
}

/// The fixture of each family and a tensor-name fragment only its weights have.
const WEIGHT_FAMILIES: [(&str, &str); 6] = [
    ("tiny-gqa-tied", "self_attn.q_proj"),
    ("tiny-gemma3", "self_attn.q_norm"),
    ("tiny-gpt2", "attn.c_attn"),
    ("tiny-bert-mlm", "bert.encoder"),
    ("tiny-qwen2", "self_attn.q_proj.bias"),
    ("tiny-phi3", "self_attn.qkv_proj"),
];

/// The fixture whose config a safetensors input is loaded against: the family whose tensor
/// names the header holds (mutated seeds carry no label), and now and then another family's
/// (weights that do not fit the config).
fn weights_family(input: &[u8]) -> &'static str {
    let h = fnv(input.get(..64).unwrap_or(input));
    if h.is_multiple_of(8) {
        return WEIGHT_FAMILIES[(h >> 8) as usize % WEIGHT_FAMILIES.len()].0;
    }
    let header = input.get(..8192).unwrap_or(input);
    WEIGHT_FAMILIES
        .iter()
        .rev()
        .find(|(_, fragment)| header.windows(fragment.len()).any(|w| w == fragment.as_bytes()))
        .map_or(WEIGHT_FAMILIES[0].0, |(family, _)| family)
}

/// A model the loader accepted must run a short forward pass: errors, never panics.
fn forward(model: Model) {
    use glassbox_engine::exec::executor::Executor;
    let mut exec = glassbox_engine::exec::cpu::CpuExecutor::new(std::sync::Arc::new(model));
    let _ = exec.forward(&[0, 1, 2], glassbox_engine::exec::executor::PassOptions::default());
}

/// `glassbox`'s own path for a `.gguf`: the whole conversion into a Hugging Face folder, then
/// loading that folder (model and tokenizer) and running it.
fn convert_and_run(input: &[u8], scratch: &Path) {
    let gguf = scratch.join("fuzz.gguf");
    let out = scratch.join("converted");
    let _ = std::fs::remove_dir_all(&out);
    if std::fs::write(&gguf, input).is_err() || std::fs::create_dir(&out).is_err() {
        return;
    }
    if convert_gguf_to_hf(&gguf, &out, &mut |_, _| {}).is_err() {
        return;
    }
    if let Ok(Some(t)) = Tokenizer::load_dir(&out, 1 << 20) {
        exercise_tokenizer(&t);
    }
    if let Ok(model) = Model::load(&out) {
        forward(model);
    }
}

/// The chat template file written beside every tokenizer input (fixed: the template
/// sandbox has its own tests; here the tokenizer is the target).
const TOKENIZER_CONFIG: &str = r#"{"chat_template": [{"name": "default", "template": "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}"}], "eos_token": "<|end|>"}"#;

/// Runs one input through `target`'s loader. Errors are fine; only a panic (caught by the
/// caller) is a finding. `scratch` is a private folder for inputs that must be files.
/// Returns whether the input got past the first parse (how deep the fuzzing reaches).
pub fn run_one(target: Target, input: &[u8], scratch: &Path) -> bool {
    match target {
        Target::Gguf => {
            let Ok(file) = GgufFile::from_bytes(Path::new("fuzz.gguf"), input.to_vec()) else {
                return false;
            };
            let config = build_config_json(&file);
            let tokenizer_config = build_tokenizer_config_json(&file);
            let tokenizer = build_tokenizer_json(&file);
            // Each planned tensor as the converter treats it: dequantized, Q/K rows
            // un-permuted (Llama), norms shifted back (Gemma).
            let mut tensors_ok = false;
            if let Ok(plan) = planned_tensors(&file) {
                tensors_ok = true;
                for t in plan {
                    let Ok((shape, mut values)) = file.tensor_f32(&t.gguf_name) else {
                        tensors_ok = false;
                        continue;
                    };
                    if let Some(heads) = t.unpermute_heads {
                        values = unpermute_rows(&values, shape.last().copied().unwrap_or(1), heads);
                    }
                    if t.norm_shift {
                        values.iter_mut().for_each(|v| *v -= 1.0);
                    }
                }
            }
            // Every tokenizer the converter writes must load (or fail) without a panic.
            if let Ok(json) = &tokenizer {
                let _ = std::fs::write(scratch.join("tokenizer.json"), json.to_string());
                let _ = std::fs::remove_file(scratch.join("tokenizer_config.json"));
                if let Ok(Some(t)) = Tokenizer::load_dir(scratch, 1 << 20) {
                    exercise_tokenizer(&t);
                }
            }
            // Everything converts in memory: the whole conversion, and the folder it writes.
            if tensors_ok && config.is_ok() && tokenizer.is_ok() && tokenizer_config.is_ok() {
                convert_and_run(input, scratch);
            }
            true
        }
        Target::Native => {
            // Parsed first only to count how deep the run reaches; the load parses again.
            if GgufFile::from_bytes(Path::new("native.gguf"), input.to_vec()).is_err() {
                return false;
            }
            let path = scratch.join("native.gguf");
            if std::fs::write(&path, input).is_ok()
                && let Ok(model) = Model::load_with(&path, glassbox_engine::WeightsMode::Native)
            {
                if let Some(t) = &model.tokenizer {
                    exercise_tokenizer(t);
                }
                forward(model);
            }
            true
        }
        Target::Safetensors => {
            let family = weights_family(input);
            let _ = std::fs::copy(fixtures_dir().join(family).join("config.json"), scratch.join("config.json"));
            let _ = std::fs::remove_file(scratch.join("tokenizer.json"));
            if std::fs::write(scratch.join("model.safetensors"), input).is_ok()
                && let Ok(model) = Model::load(scratch)
            {
                forward(model);
            }
            safetensors::SafeTensors::deserialize(input).is_ok()
        }
        Target::Config => {
            let text = String::from_utf8_lossy(input);
            let parsed = LlamaConfig::from_json(&text, Path::new("config.json"));
            if let Ok(c) = &parsed {
                let _ = (c.inv_freq(), c.n_params(), c.rope_kind(), c.eos_ids());
                let _ = glassbox_engine::load::load_check::expected_tensors(c);
                // The real weights against the mutated config: mismatches, not panics.
                if c.n_params() < 50_000_000 {
                    // The weights of the config's own family: the loaders past the check run.
                    let weights = match c.arch().family {
                        glassbox_engine::load::arch::Family::Llama => "tiny-gqa-tied",
                        glassbox_engine::load::arch::Family::Gemma3 => "tiny-gemma3",
                        glassbox_engine::load::arch::Family::Gpt2 => "tiny-gpt2",
                        glassbox_engine::load::arch::Family::Bert => "tiny-bert-mlm",
                        glassbox_engine::load::arch::Family::Qwen2 => "tiny-qwen2",
                        glassbox_engine::load::arch::Family::Qwen3 => "tiny-qwen3",
                        glassbox_engine::load::arch::Family::Olmo2 => "tiny-olmo2",
                        glassbox_engine::load::arch::Family::Phi3 => "tiny-phi3",
                    };
                    let _ = std::fs::copy(fixtures_dir().join(weights).join("model.safetensors"), scratch.join("model.safetensors"));
                    let _ = std::fs::write(scratch.join("config.json"), input);
                    let _ = std::fs::remove_file(scratch.join("tokenizer.json"));
                    // A config the loader accepts must also run: errors, never panics.
                    if let Ok(model) = Model::load(scratch) {
                        forward(model);
                    }
                }
            }
            parsed.is_ok()
        }
        Target::Tokenizer => {
            let _ = std::fs::write(scratch.join("tokenizer.json"), input);
            let _ = std::fs::write(scratch.join("tokenizer_config.json"), TOKENIZER_CONFIG);
            match Tokenizer::load_dir(scratch, 1 << 20) {
                Ok(Some(t)) => {
                    exercise_tokenizer(&t);
                    true
                }
                _ => false,
            }
        }
    }
}

fn exercise_tokenizer(t: &Tokenizer) {
    for text in ["ab 12 ab", "", "深度学习 \u{1F600} a\tb\n", "<|end|>x"] {
        if let Ok(ids) = t.encode(text) {
            let _ = t.decode(&ids);
            for id in ids.iter().take(16) {
                let _ = t.display(*id);
            }
        }
    }
    let _ = t.decode(&[0, 1, 2, 3, u32::MAX]);
    let _ = t.apply_chat_template(&[ChatMessage::user("hi")], true);
}

/// What a run found.
#[derive(Debug, Default, Clone)]
pub struct Report {
    pub target: &'static str,
    pub inputs: u64,
    /// Inputs the loader accepted (past its first parse): how deep the mutations reach.
    pub accepted: u64,
    pub panics: u64,
    /// Panics the tokenizers crate raised that `guard::catch_panic` turned into errors.
    pub guarded_panics: u64,
    pub slowest: Duration,
    /// The input that took `slowest`, to replay it.
    pub slowest_input: Vec<u8>,
    pub elapsed: Duration,
    pub crash_files: Vec<PathBuf>,
}

/// Limits of one run: stop at whichever comes first.
pub struct Budget {
    pub iterations: u64,
    pub duration: Duration,
}

/// Fuzzes `target` from `seed`. Crashing inputs are written to `crash_dir` (if given).
pub fn fuzz(target: Target, seed: u64, budget: &Budget, crash_dir: Option<&Path>) -> Report {
    let seeds = seeds(target);
    let scratch = tempfile::tempdir().expect("scratch folder");
    let mut rng = Rng::new(seed);
    let mut report = Report {
        target: target.name(),
        ..Report::default()
    };
    let guarded_before = glassbox_engine::load::guard::caught_count();
    let start = Instant::now();
    // Inputs that mutated well are mutated again (a small corpus of survivors).
    let mut corpus: Vec<Vec<u8>> = seeds.clone();
    let focus = match target {
        Target::Gguf | Target::Native => 4096,
        Target::Safetensors => 2048,
        _ => 0,
    };
    while report.inputs < budget.iterations && start.elapsed() < budget.duration {
        let base = &corpus[rng.below(corpus.len())];
        let other = &seeds[rng.below(seeds.len())];
        let input = if target == Target::Safetensors && rng.chance(2) {
            mutate_safetensors_header(base, &mut rng)
        } else {
            mutate(base, other, &mut rng, target.is_text(), focus)
        };
        let t0 = Instant::now();
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_one(target, &input, scratch.path())));
        if t0.elapsed() > report.slowest {
            report.slowest = t0.elapsed();
            report.slowest_input.clone_from(&input);
        }
        report.inputs += 1;
        report.accepted += u64::from(matches!(outcome, Ok(true)));
        if outcome.is_err() {
            report.panics += 1;
            if let Some(dir) = crash_dir {
                let _ = std::fs::create_dir_all(dir);
                let path = dir.join(format!("{}-{:016x}.bin", target.name(), fnv(&input)));
                if std::fs::write(&path, &input).is_ok() {
                    report.crash_files.push(path);
                }
            }
        } else if matches!(outcome, Ok(true)) && corpus.len() < 256 && input.len() < 4 << 20 && rng.chance(4) {
            corpus.push(input);
        }
    }
    report.elapsed = start.elapsed();
    report.guarded_panics = glassbox_engine::load::guard::caught_count() - guarded_before;
    report
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Saved crash inputs of `target` (kept as regression tests), replayed by the quick run.
pub fn regression_inputs(target: Target) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(target.name());
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<(PathBuf, Vec<u8>)> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter_map(|p| Some((p.clone(), std::fs::read(&p).ok()?)))
        .collect();
    out.sort();
    out
}
