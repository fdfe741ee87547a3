//! GGUF matrices kept as downloaded, on the GPU: each block type's weight prelude against the
//! reference dequantizer (`Matrix::to_f32`, `Matrix::row`) through the GEMV (1 and 3 rows) and
//! tiled (19 rows) kernels, whole and split into row chunks; and a model whose matrices are
//! Q8_0 and Q4_0 blocks, every hook of the GPU executor against the CPU executor's.
//!
//! No adapter: each test prints a note and passes, unless `GLASSBOX_REQUIRE_GPU=1` (CI).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test here

use std::sync::Arc;

use glassbox_engine::exec::cpu::ops;
use glassbox_engine::exec::executor::{Executor, PassOptions};
use glassbox_engine::exec::gpu::ops::GpuOps;
use glassbox_engine::exec::gpu::{GpuOptions, WeightFormat};
use glassbox_engine::load::gguf::GgmlType;
use glassbox_engine::load::matrix::{Matrix, QuantBytes};
use glassbox_engine::Model;
use glassbox_tests::gpu::*;
use glassbox_tests::gpu_or_skip;
use glassbox_tests::tolerance::*;
use ndarray::Array2;

/// Every type a GGUF matrix can be kept in, with its weight format on the GPU.
const TYPES: [GgmlType; 11] = GgmlType::DECODED;

/// Byte offsets of a block's f16 scale and min fields.
fn scale_offsets(ty: GgmlType) -> &'static [usize] {
    match ty {
        GgmlType::Q8_0 | GgmlType::Q4_0 | GgmlType::Q5_0 => &[0],
        GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q4K | GgmlType::Q5K => &[0, 2],
        GgmlType::Q6K => &[208],
        _ => &[],
    }
}

/// `rows × cols` random but valid values of `ty`: random quant bits, finite f16 scales of
/// either sign (and mins), finite f16/bf16/f32 values.
fn random_matrix(ty: GgmlType, rows: usize, cols: usize, seed: u64) -> Matrix {
    let (block, block_bytes) = ty.block_layout().unwrap();
    let n_blocks = rows * cols / block;
    let noise = random(n_blocks * block_bytes, seed, 1.0);
    let mut bytes: Vec<u8> = noise.iter().map(|v| ((v + 1.0) * 127.99) as u8).collect();
    let scales = random(n_blocks * 2, seed + 1, 1.0);
    let values = random(rows * cols, seed + 2, 0.5);
    for b in 0..n_blocks {
        let at = b * block_bytes;
        match ty {
            GgmlType::F32 => bytes[at..at + 4].copy_from_slice(&values[b].to_le_bytes()),
            GgmlType::F16 => bytes[at..at + 2].copy_from_slice(&half::f16::from_f32(values[b]).to_le_bytes()),
            GgmlType::Bf16 => bytes[at..at + 2].copy_from_slice(&half::bf16::from_f32(values[b]).to_le_bytes()),
            _ => {
                for (i, &o) in scale_offsets(ty).iter().enumerate() {
                    // Scales from 2e-3 to 2e-2 of either sign: normal f16s, values of order 1.
                    let s = scales[2 * b + i];
                    let d = s.signum() * (0.002 + 0.018 * s.abs());
                    bytes[at + o..at + o + 2].copy_from_slice(&half::f16::from_f32(d).to_le_bytes());
                }
            }
        }
    }
    Matrix::quantized(ty, QuantBytes::Owned(bytes.into()), rows, cols).unwrap()
}

/// Columns spanning several blocks (and, for the element types, not a multiple of 4: the
/// rows are padded on the GPU).
fn cols_for(ty: GgmlType) -> usize {
    match ty.block_layout().unwrap().0 {
        1 => 70,
        32 => 7 * 32,
        _ => 3 * 256,
    }
}

fn ops_for(ctx: &Arc<glassbox_engine::exec::gpu::GpuContext>) -> GpuOps {
    GpuOps::new(Arc::clone(ctx), WeightFormat::F32).unwrap()
}

#[test]
fn quantized_linear_matches_the_cpu_on_dequantized_weights() {
    let ctx = gpu_or_skip!();
    let gpu = ops_for(&ctx);
    for (t, ty) in TYPES.into_iter().enumerate() {
        let (rows, cols) = (37, cols_for(ty));
        let w = random_matrix(ty, rows, cols, 100 + t as u64);
        let reference = w.to_f32();
        let row_bytes = (w.bytes() / rows) as u64;
        // Whole, and in chunks of 13 rows (37 = 13 + 13 + 11).
        for max_chunk in [u64::MAX, 13 * row_bytes.next_multiple_of(4).max(row_bytes)] {
            for m in [1, 3, 19] {
                let x = random2((m, cols), 200 + m as u64, 1.0);
                let ours = gpu.linear_matrix(x.view(), &w, max_chunk).unwrap();
                let want = ops::linear(x.view(), reference.view()).unwrap();
                let chunked = if max_chunk == u64::MAX { "whole" } else { "chunked" };
                check(&format!("{ty} linear, {m} rows, {chunked}"), &flat(&ours), &flat(&want), KERNEL_LINEAR);
            }
        }
    }
}

#[test]
fn a_quantized_embedding_table_gathers_its_reference_rows() {
    let ctx = gpu_or_skip!();
    let gpu = ops_for(&ctx);
    for (t, ty) in TYPES.into_iter().enumerate() {
        let (rows, cols) = (41, cols_for(ty));
        let table = random_matrix(ty, rows, cols, 300 + t as u64);
        let ids = [0u32, 40, 7, 7, 23, 1];
        let row_bytes = (table.bytes() / rows) as u64;
        for max_chunk in [u64::MAX, 10 * row_bytes] {
            let ours = gpu.embed_matrix(&table, &ids, max_chunk).unwrap();
            let want = Array2::from_shape_fn((ids.len(), cols), |(p, j)| table.row(ids[p] as usize)[j]);
            // Exact where the reference only multiplies; one rounding apart where it adds a
            // min (the GPU may fuse the multiply-add).
            let d = diff(&flat(&ours), &flat(&want)).unwrap();
            let exact = matches!(ty, GgmlType::Q8_0 | GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q6K | GgmlType::F16 | GgmlType::Bf16 | GgmlType::F32);
            eprintln!("{ty} embedding (chunk {max_chunk}): max abs {:.2e}", d.max_abs);
            if exact {
                assert_eq!(ours, want, "{ty} embedding gather");
            } else {
                assert!(d.max_abs <= 1e-6, "{ty} embedding gather: max abs {:.3e}", d.max_abs);
            }
        }
    }
}

/// `w` [rows, cols] as Q8_0 blocks (d = max|w| / 127, q = round(w / d)).
fn quantize_q8_0(w: &Array2<f32>) -> Vec<u8> {
    let mut out = Vec::new();
    for block in w.as_slice().unwrap().chunks_exact(32) {
        let d = block.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0;
        let d16 = half::f16::from_f32(d);
        let inv = if d16.to_f32() == 0.0 { 0.0 } else { 1.0 / d16.to_f32() };
        out.extend(d16.to_le_bytes());
        out.extend(block.iter().map(|v| (v * inv).round().clamp(-127.0, 127.0) as i8 as u8));
    }
    out
}

/// `w` as Q4_0 blocks (d = max|w| / 8 signed as ggml does, q = round(w / d) + 8 in 0..16).
fn quantize_q4_0(w: &Array2<f32>) -> Vec<u8> {
    let mut out = Vec::new();
    for block in w.as_slice().unwrap().chunks_exact(32) {
        let max = block.iter().fold(0f32, |m, &v| if v.abs() > m.abs() { v } else { m });
        let d16 = half::f16::from_f32(max / -8.0);
        let inv = if d16.to_f32() == 0.0 { 0.0 } else { 1.0 / d16.to_f32() };
        let q = |v: f32| ((v * inv + 8.5) as i32).clamp(0, 15) as u8;
        out.extend(d16.to_le_bytes());
        out.extend((0..16).map(|j| q(block[j]) | (q(block[j + 16]) << 4)));
    }
    out
}

fn quantize(m: &Matrix, ty: GgmlType) -> Matrix {
    let w = m.to_f32();
    let bytes = match ty {
        GgmlType::Q8_0 => quantize_q8_0(&w),
        _ => quantize_q4_0(&w),
    };
    Matrix::quantized(ty, QuantBytes::Owned(bytes.into()), w.nrows(), w.ncols()).unwrap()
}

/// The SmolLM2-shaped fixture with every matrix quantized, Q8_0 and Q4_0 mixed as a
/// llama.cpp file mixes types (the tied embedding, read by the gather and the LM head, Q8_0).
fn quantized_model() -> Arc<Model> {
    let mut model = Model::load(&glassbox_tests::fixtures_dir().join("tiny-smollm2-shape")).unwrap();
    let w = &mut model.weights;
    w.embed_tokens = quantize(&w.embed_tokens, GgmlType::Q8_0);
    for layer in &mut w.layers {
        let a = &mut layer.self_attn;
        a.q_proj = quantize(&a.q_proj, GgmlType::Q8_0);
        a.k_proj = quantize(&a.k_proj, GgmlType::Q4_0);
        a.v_proj = quantize(&a.v_proj, GgmlType::Q8_0);
        a.o_proj = quantize(&a.o_proj, GgmlType::Q4_0);
        let mlp = &mut layer.mlp;
        mlp.gate_proj = quantize(&mlp.gate_proj, GgmlType::Q4_0);
        mlp.up_proj = mlp.up_proj.as_ref().map(|u| quantize(u, GgmlType::Q8_0));
        mlp.down_proj = quantize(&mlp.down_proj, GgmlType::Q4_0);
    }
    assert!(w.lm_head.is_none(), "the fixture ties its head");
    Arc::new(model)
}

#[test]
fn a_quantized_model_runs_every_hook_as_the_cpu_does() {
    let ctx = gpu_or_skip!();
    let model = quantized_model();
    let ids = input_ids("tiny-smollm2-shape");
    let cpu = cpu_pass(&model, &ids, PassOptions::default());
    // Whole matrices, and every matrix split into chunks of at most 16 KiB (a Q4_0 row of 576
    // values is 324 bytes; the 300-row Q8_0 table goes up in 27 chunks).
    for max_chunk_bytes in [None, Some(16 << 10)] {
        let options = GpuOptions { max_chunk_bytes, ..GpuOptions::default() };
        let mut exec = gpu_exec(&ctx, &model, options);
        let formats = exec.weight_formats();
        assert!(formats.contains(&WeightFormat::Q8_0) && formats.contains(&WeightFormat::Q4_0) && !formats.contains(&WeightFormat::F32), "{formats:?}");
        let gpu = exec.forward(&ids, PassOptions::default()).unwrap();
        let worst = compare_traces(&gpu, &cpu, PASS_HOOK).unwrap_or_else(|e| panic!("chunks {max_chunk_bytes:?}: {e}"));
        eprintln!("quantized model, chunks {max_chunk_bytes:?}: worst NMSE {:.2e}, max abs {:.2e}; {} bytes of weights", worst.nmse, worst.max_abs, exec.weight_bytes());
        // Decode: one more token through the GEMV kernels, after the cache.
        let next = [gpu.sampled.unwrap_or(1)];
        let gpu_step = exec.forward(&next, PassOptions::default()).unwrap();
        let mut cpu_exec = glassbox_engine::exec::cpu::CpuExecutor::new(Arc::clone(&model));
        cpu_exec.forward(&ids, PassOptions::default()).unwrap();
        let cpu_step = cpu_exec.forward(&next, PassOptions::default()).unwrap();
        compare_traces(&gpu_step, &cpu_step, PASS_HOOK).unwrap_or_else(|e| panic!("decode, chunks {max_chunk_bytes:?}: {e}"));
    }
}

/// The converted f32 model in `folder` with each matrix replaced by its GGUF tensor's blocks
/// (`hf_name` maps the GGUF's names), Q/K rows un-permuted as whole rows of blocks where
/// llama.cpp permuted them (until the loader's `WeightsMode::Native` does all this itself).
fn native_from_gguf(gguf_path: &std::path::Path, folder: &std::path::Path, hf_name: fn(&str) -> Option<String>, permuted: bool) -> (Arc<Model>, usize) {
    use glassbox_engine::load::gguf::{GgufFile, unpermute_rows};
    let gguf = GgufFile::open(gguf_path).unwrap();
    let file = std::fs::read(gguf_path).unwrap();
    let mut model = Model::load(folder).unwrap();
    let mut replaced = 0;
    for t in gguf.tensors() {
        let shape = t.hf_shape();
        let (Some(name), &[rows, cols]) = (hf_name(&t.name), &shape[..]) else { continue };
        let start = (gguf.data_start() + t.offset) as usize;
        let mut bytes: Arc<[u8]> = file[start..start + t.byte_len().unwrap() as usize].into();
        let heads = match name.rsplit('.').nth(1) {
            Some("q_proj") if permuted => Some(model.config.n_heads()),
            Some("k_proj") if permuted => Some(model.config.n_kv_heads()),
            _ => None,
        };
        if let Some(heads) = heads {
            // The permutation moves whole rows: each row's source, from the row indices.
            let order = unpermute_rows(&(0..rows).map(|r| r as f32).collect::<Vec<_>>(), 1, heads);
            let row_bytes = bytes.len() / rows;
            bytes = order.iter().flat_map(|&r| bytes[r as usize * row_bytes..(r as usize + 1) * row_bytes].to_vec()).collect::<Vec<u8>>().into();
        }
        let m = Matrix::quantized(t.ggml_type, QuantBytes::Owned(bytes), rows, cols).unwrap();
        let w = &mut model.weights;
        let slot = match name.as_str() {
            "model.embed_tokens.weight" => Some(&mut w.embed_tokens),
            "lm_head.weight" => w.lm_head.as_mut(),
            _ => {
                let parts: Vec<&str> = name.split('.').collect();
                let layer = &mut w.layers[parts[2].parse::<usize>().unwrap()];
                match (parts[3], parts[4]) {
                    ("self_attn", "q_proj") => Some(&mut layer.self_attn.q_proj),
                    ("self_attn", "k_proj") => Some(&mut layer.self_attn.k_proj),
                    ("self_attn", "v_proj") => Some(&mut layer.self_attn.v_proj),
                    ("self_attn", "o_proj") => Some(&mut layer.self_attn.o_proj),
                    ("mlp", "gate_proj") => Some(&mut layer.mlp.gate_proj),
                    ("mlp", "up_proj") => layer.mlp.up_proj.as_mut(),
                    ("mlp", "down_proj") => Some(&mut layer.mlp.down_proj),
                    _ => None,
                }
            }
        };
        if let Some(slot) = slot {
            assert_eq!(slot.dim(), m.dim(), "{name}");
            *slot = m;
            replaced += 1;
        }
    }
    (Arc::new(model), replaced)
}

/// A real GGUF's blocks on the GPU against its f32 conversion (the same values, dequantized):
/// every hook, and the bytes the weights take.
fn native_against_f32(env: &str, cache_name: &str, hf_name: fn(&str) -> Option<String>, permuted: bool, prompt: &str) {
    let ctx = gpu_or_skip!();
    let path = std::path::PathBuf::from(std::env::var(env).unwrap_or_else(|_| panic!("{env}")));
    let folder = std::path::PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/glassbox/models").join(cache_name);
    let (model, replaced) = native_from_gguf(&path, &folder, hf_name, permuted);
    let f32_model = Arc::new(Model::load(&folder).unwrap());
    let mut native = gpu_exec(&ctx, &model, GpuOptions::default());
    let mut f32_exec = gpu_exec(&ctx, &f32_model, GpuOptions::default());
    let ids = model.tokenizer.as_ref().unwrap().encode_prompt(prompt).unwrap();
    let ours = native.forward(&ids, PassOptions::default()).unwrap();
    let want = f32_exec.forward(&ids, PassOptions::default()).unwrap();
    let worst = compare_traces(&ours, &want, SMOLLM2_PASS_HOOK).unwrap_or_else(|e| panic!("{cache_name}: native vs f32 on the GPU: {e}"));
    let (err, same) = logits_agree(&ours, &want);
    eprintln!(
        "{cache_name}: {replaced} matrices kept as blocks {:?}; vs the f32 conversion on the GPU: worst hook NMSE {:.2e}, logits max abs {err:.2e}, argmax agrees {same}",
        native.weight_formats(),
        worst.nmse
    );
    eprintln!(
        "{cache_name}: GPU weight bytes native {} vs f32 {} ({:.3}×)",
        native.weight_bytes(),
        f32_exec.weight_bytes(),
        native.weight_bytes() as f64 / f32_exec.weight_bytes() as f64
    );
}

/// Run by hand: `GLASSBOX_Q4_1_GGUF=path/to/SmolLM2-135M-Instruct.Q4_1.gguf` with the
/// converted folder in the cache (`glassbox fetch smollm2-135m`).
#[test]
#[ignore = "needs the SmolLM2 Q4_1 GGUF and its converted folder"]
fn smollm2_q4_1_blocks_on_the_gpu_equal_its_f32_conversion() {
    native_against_f32("GLASSBOX_Q4_1_GGUF", "smollm2-135m-instruct", glassbox_engine::load::gguf::hf_tensor_name, true, "The capital of France is");
}

/// Run by hand: `GLASSBOX_GEMMA_Q4_K_M_GGUF=path/to/gemma-3-270m-q4_k_m.gguf` with the
/// converted folder in the cache (`glassbox fetch gemma-3-270m`): Q4_K, Q6_K, Q5_0 and Q8_0
/// matrices in one model.
#[test]
#[ignore = "needs the Gemma 3 270M Q4_K_M GGUF and its converted folder"]
fn gemma3_q4_k_m_blocks_on_the_gpu_equal_its_f32_conversion() {
    native_against_f32("GLASSBOX_GEMMA_Q4_K_M_GGUF", "gemma-3-270m", glassbox_engine::load::gguf::gemma3_hf_tensor_name, false, "The capital of France is");
}
