//! SmolLM2-135M-Instruct (Q4_1 GGUF → f32) against Hugging Face transformers goldens P1–P5:
//! tokenization, top-20 logits, residual norms, attention rows, logit lens, greedy
//! generation with and without the KV cache, and the chat template.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use glassbox_engine::experiments::analysis;
use glassbox_engine::exec::cpu::CpuExecutor;
use glassbox_engine::exec::executor::{Executor, PassOptions, generate, generate_uncached};
use glassbox_engine::exec::sampling::SamplingParams;
use glassbox_engine::load::tokenizer::ChatMessage;
use glassbox_engine::exec::trace::CaptureFilter;
use glassbox_engine::{BlockHook, HookKey};
use glassbox_tests::golden::{self, PROMPTS};
use glassbox_tests::tolerance::SMOLLM2_LOGITS_ABS;

macro_rules! model_or_skip {
    () => {
        match golden::smollm2() {
            Some(m) => m,
            None => return,
        }
    };
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn tokenization_matches_goldens_exactly() {
    let model = model_or_skip!();
    let tok = model.tokenizer.as_ref().unwrap();
    for id in PROMPTS {
        let g = golden::prompt(id);
        let ids = tok.encode(&g.prompt).unwrap();
        assert_eq!(ids, g.token_ids, "{id}: token ids");
        let bytes: Vec<String> = ids.iter().map(|&t| hex(&tok.token_bytes(t))).collect();
        assert_eq!(bytes, g.token_bytes_hex, "{id}: token bytes");
        for (i, (&t, s)) in ids.iter().zip(&g.token_strings).enumerate() {
            // Whole characters display as text; a partial UTF-8 character shows its bytes.
            let shown = tok.display(t);
            if std::str::from_utf8(&tok.token_bytes(t)).is_ok() {
                assert_eq!(&shown, s, "{id}: token {i}");
            } else {
                assert!(shown.starts_with('<') && !shown.contains('\u{FFFD}'), "{id}: token {i} shows {shown:?}");
            }
        }
    }
}

#[test]
fn digits_split_one_by_one_and_chinese_and_emoji_round_trip() {
    let model = model_or_skip!();
    let tok = model.tokenizer.as_ref().unwrap();
    let ids = tok.encode("In 2024 there were 12345 cats").unwrap();
    let pieces: Vec<String> = ids.iter().map(|&i| tok.display(i)).collect();
    for digit in ["2", "0", "4", "1", "3", "5"] {
        assert!(pieces.iter().any(|p| p == digit), "{pieces:?}");
    }
    assert!(pieces.iter().all(|p| p.chars().filter(char::is_ascii_digit).count() <= 1), "digits merged: {pieces:?}");
    for text in ["深度学习模型的核心是", "I like it 🙂!"] {
        let ids = tok.encode(text).unwrap();
        assert_eq!(tok.decode(&ids).unwrap(), text);
        let bytes: Vec<u8> = ids.iter().flat_map(|&i| tok.token_bytes(i)).collect();
        assert_eq!(bytes, text.as_bytes());
    }
    // The emoji is 4 UTF-8 bytes; any token holding part of it shows bytes, never "�".
    for &id in &tok.encode("🙂").unwrap() {
        assert!(!tok.display(id).contains('\u{FFFD}'));
    }
}

#[test]
fn last_position_logits_residuals_attention_and_lens_match() {
    let model = model_or_skip!();
    let n_layers = model.config.n_layers();
    for id in PROMPTS {
        let g = golden::prompt(id);
        let mut exec = CpuExecutor::new(model.clone());
        let trace = exec.forward(&g.token_ids, PassOptions::capture(CaptureFilter::All)).unwrap();
        let last = analysis::last_logits(&trace).unwrap();

        // Top-20 logits within 2e-3; ids identical where the golden gap exceeds 1e-3.
        for (rank, e) in g.last_logits_top20.iter().enumerate() {
            let ours = last[e.id as usize];
            assert!(f64::from((ours - e.logit).abs()) <= SMOLLM2_LOGITS_ABS, "{id}: logit of {} (rank {rank}): {ours} vs {}", e.id, e.logit);
        }
        let ours_top = analysis::top_k(&last, 20, 1.0);
        let want = &g.last_logits_top20;
        for (rank, ours) in ours_top.iter().enumerate() {
            let gap_before = rank == 0 || want[rank - 1].logit - want[rank].logit > 1e-3;
            let gap_after = rank == 19 || want[rank].logit - want[rank + 1].logit > 1e-3;
            if gap_before && gap_after {
                assert_eq!(ours.id, want[rank].id, "{id}: rank {rank}");
            }
        }
        let lse = last.iter().map(|&v| f64::from(v)).fold(f64::NEG_INFINITY, f64::max);
        let lse = lse + last.iter().map(|&v| (f64::from(v) - lse).exp()).sum::<f64>().ln();
        assert!((lse - g.last_logits_logsumexp).abs() < 2e-3, "{id}: logsumexp {lse}");
        assert!((f64::from(ours_top[0].prob) - g.last_logits_top20[0].prob).abs() < 1e-3);

        // Residual norms within 1e-3 relative.
        let norms = analysis::residual_norms(&trace, n_layers).unwrap();
        for (k, (ours, theirs)) in norms.iter().zip(&g.residual_l2_norms.values).enumerate() {
            for (t, (a, b)) in ours.iter().zip(theirs).enumerate() {
                assert!((a - b).abs() <= 1e-3 * b.abs().max(1.0), "{id}: residual {k} pos {t}: {a} vs {b}");
            }
        }

        // Attention of the last query, heads 0 and 8, every layer; the full layer-0 head-0 pattern.
        let t = g.token_ids.len() - 1;
        for l in 0..n_layers {
            let p = trace.get(HookKey::Block(l, BlockHook::Pattern)).unwrap().as_3d().unwrap();
            for (head, rows) in [(0, &g.attention_last_query.head0), (8, &g.attention_last_query.head_last)] {
                for (j, &want) in rows[l].iter().enumerate() {
                    assert!((p[[head, t, j]] - want).abs() < 1e-4, "{id}: L{l} H{head} key {j}");
                }
            }
        }
        let p0 = trace.get(HookKey::Block(0, BlockHook::Pattern)).unwrap().as_3d().unwrap();
        for (i, row) in g.attention_layer0_head0_full.iter().enumerate() {
            for (j, &want) in row.iter().enumerate() {
                assert!((p0[[0, i, j]] - want).abs() < 1e-4, "{id}: L0 H0 [{i},{j}]");
            }
        }

        // Logit lens: top-1 per residual at the last position.
        let lens = analysis::logit_lens_at(&model, &trace, t, 5).unwrap();
        for layer in &g.logit_lens_last_position.layers {
            let gap = layer.top5_logits[0] - layer.top5_logits[1];
            if gap > 1e-2 {
                assert_eq!(lens[layer.layer][0], layer.top5_ids[0], "{id}: logit lens residual {}", layer.layer);
            }
        }
    }
}

#[test]
fn greedy_twenty_tokens_match_with_and_without_cache() {
    let model = model_or_skip!();
    let eos = model.config.eos_ids();
    for id in PROMPTS {
        let g = golden::generation(id);
        let mut exec = CpuExecutor::new(model.clone());
        let cached = generate(&mut exec, &g.prompt_token_ids, 20, SamplingParams::greedy(), &eos, &mut |_| {}).unwrap();
        assert_eq!(cached, g.new_token_ids, "{id}: cached greedy");
        let text = model.tokenizer.as_ref().unwrap().decode(&cached).unwrap();
        assert_eq!(text, g.new_text, "{id}: text");
    }
    // Uncached re-runs the whole sequence every step: one prompt is enough to prove equality.
    let g = golden::generation("P5");
    let mut exec = CpuExecutor::new(model.clone());
    let uncached = generate_uncached(&mut exec, &g.prompt_token_ids, 20, &eos).unwrap();
    assert_eq!(uncached, g.new_token_ids, "P5: uncached greedy");
}

#[test]
fn chat_template_renders_and_tokenizes_like_transformers() {
    let model = model_or_skip!();
    let tok = model.tokenizer.as_ref().unwrap();
    let g = golden::chat();
    let rendered = tok.apply_chat_template(&[ChatMessage::user("What is the capital of France?")], true).unwrap();
    assert_eq!(rendered, g.rendered);
    assert_eq!(tok.encode(&rendered).unwrap(), g.token_ids);
    // The greedy reply stops at <|im_end|>, as transformers' did.
    assert!(g.generation.stopped_on_eos);
    let mut exec = CpuExecutor::new(model.clone());
    let reply = generate(&mut exec, &g.token_ids, 30, SamplingParams::greedy(), &model.config.eos_ids(), &mut |_| {}).unwrap();
    assert_eq!(reply, g.generation.new_token_ids);
}
