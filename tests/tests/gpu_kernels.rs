//! Every GPU kernel on its own against the CPU reference's op (`cpu::ops`), at SmolLM2's
//! shapes and odd ones, with the bounds of `TOLERANCES.md`; and the device handling (errors
//! as results, a borrowed device, several threads on one device).
//!
//! No adapter: each test prints a note and passes, unless `GLASSBOX_REQUIRE_GPU=1` (CI).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test here

use std::sync::Arc;

use glassbox_engine::exec::cpu::ops;
use glassbox_engine::exec::executor::{Executor, PassOptions};
use glassbox_engine::exec::gpu::ops::GpuOps;
use glassbox_engine::exec::gpu::weights::round_to_f16;
use glassbox_engine::exec::gpu::{GpuContext, GpuOptions, WeightFormat};
use glassbox_engine::exec::intervene::{ActivationPrecision, Edit, Intervention, Values};
use glassbox_engine::program::op_table::PassDims;
use glassbox_engine::exec::tensor::{Dim, Tensor};
use glassbox_engine::{BlockHook, HookKey};
use glassbox_tests::gpu::*;
use glassbox_tests::gpu_or_skip;
use glassbox_tests::tolerance::*;
use ndarray::{Array1, Array2, IxDyn};

// ---------------------------------------------------------------- context

#[test]
fn gpu_errors_become_results_not_panics() {
    let ctx = gpu_or_skip!();
    use glassbox_engine::exec::gpu::wgpu;
    let too_big = ctx.limits.max_buffer_size.saturating_add(1 << 20);
    let caught = ctx.scoped("an oversized buffer", || {
        ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("oversized"),
            size: too_big,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        })
    });
    let err = caught.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("an oversized buffer"), "expected a scoped error, got `{err}`");
    assert!(ctx.check_fault().is_ok(), "a scoped error must not poison the device");
    // Limits are checked before allocating, naming the tensor.
    let err = ctx.storage("blocks.0.attn.hook_pattern", too_big, wgpu::BufferUsages::empty()).unwrap_err();
    assert!(err.to_string().contains("hook_pattern") && err.to_string().contains("per buffer binding"), "{err}");
}

#[test]
fn a_borrowed_device_runs_the_same_pass() {
    let owner = gpu_or_skip!();
    // What the app does with eframe's device: hand it in instead of opening one.
    let ctx = GpuContext::from_device(owner.device.clone(), owner.queue.clone(), owner.info.clone());
    let model = load("tiny-mha-untied");
    let ids = input_ids("tiny-mha-untied");
    let gpu = gpu_exec(&ctx, &model, GpuOptions::default()).forward(&ids, PassOptions::default()).unwrap();
    let cpu = cpu_pass(&model, &ids, PassOptions::default());
    compare_traces(&gpu, &cpu, PASS_HOOK).unwrap_or_else(|e| panic!("borrowed device: {e}"));
}

#[test]
fn several_threads_can_share_one_device() {
    // As the app does with eframe's device: other threads poll it while we wait for a map.
    let ctx = gpu_or_skip!();
    let gpu = ops_f32(&ctx);
    std::thread::scope(|scope| {
        for t in 0..4u64 {
            scope.spawn(move || {
                for i in 0..12 {
                    let x = random2((3, 64), t * 100 + i, 2.0);
                    let g = Array1::from(random(64, 1, 0.5)) + 1.0;
                    let (_, h) = gpu.rmsnorm(x.view(), g.view(), 1e-5).unwrap_or_else(|e| panic!("thread {t}, run {i}: {e}"));
                    let (_, want) = ops::rmsnorm(x.view(), g.view(), 1e-5);
                    assert!(diff(&flat(&h), &flat(&want)).is_ok_and(|d| d.nmse <= KERNEL_RMSNORM));
                }
            });
        }
    });
}

// ---------------------------------------------------------------- kernels

#[test]
fn kernel_linear_matches_cpu_at_smollm2_and_odd_shapes() {
    let ctx = gpu_or_skip!();
    let gpu = ops_f32(&ctx);
    // (in, out): q/o, k/v, gate/up, down, and an odd shape (in not a multiple of 4).
    for (i, &(d_in, d_out)) in [(576, 576), (576, 192), (576, 1536), (1536, 576), (50, 37)].iter().enumerate() {
        let w = random2((d_out, d_in), 10 + i as u64, 0.1);
        for pos in [1, 7, 64] {
            let x = random2((pos, d_in), 100 + pos as u64, 1.0);
            let ours = gpu.linear(x.view(), w.view(), u64::MAX).unwrap();
            check(&format!("linear pos {pos}, {d_in}→{d_out}"), &flat(&ours), &flat(&ops::linear(x.view(), w.view()).unwrap()), KERNEL_LINEAR);
        }
    }
    // The logits shape: one decode row against the whole vocabulary (GEMV), and a few rows.
    let w = random2((49152, 576), 7, 0.05);
    for pos in [1, 5] {
        let x = random2((pos, 576), 8, 1.0);
        let ours = gpu.linear(x.view(), w.view(), u64::MAX).unwrap();
        check(&format!("logits pos {pos}, 576→49152"), &flat(&ours), &flat(&ops::linear(x.view(), w.view()).unwrap()), KERNEL_LINEAR);
    }
}

#[test]
fn kernel_linear_and_embed_split_across_chunks() {
    let ctx = gpu_or_skip!();
    let gpu = ops_f32(&ctx);
    let w = random2((300, 64), 3, 0.2);
    let chunk = 37 * 64 * 4; // 37 rows per buffer: 9 chunks, the last one short
    for pos in [1, 7, 64] {
        let x = random2((pos, 64), 4, 1.0);
        let ours = gpu.linear(x.view(), w.view(), chunk).unwrap();
        check(&format!("chunked linear pos {pos}"), &flat(&ours), &flat(&ops::linear(x.view(), w.view()).unwrap()), KERNEL_LINEAR);
    }
    let ids = [0u32, 36, 37, 299, 150, 0];
    let ours = gpu.embed(w.view(), &ids, chunk).unwrap();
    let want = Array2::from_shape_fn((ids.len(), 64), |(p, j)| w[[ids[p] as usize, j]]);
    assert_eq!(ours, want, "chunked embedding gather");
}

#[test]
fn kernel_embed_gathers_rows_exactly() {
    let ctx = gpu_or_skip!();
    let table = random2((300, 576), 5, 0.1);
    for ids in [vec![7u32], vec![0, 299, 5, 5, 17, 298, 1]] {
        let ours = ops_f32(&ctx).embed(table.view(), &ids, u64::MAX).unwrap();
        let want = Array2::from_shape_fn((ids.len(), 576), |(p, j)| table[[ids[p] as usize, j]]);
        assert_eq!(ours, want, "embedding gather of {ids:?}");
    }
}

#[test]
fn kernel_rmsnorm_matches_cpu() {
    let ctx = gpu_or_skip!();
    for (d, pos) in [(576, 1), (576, 7), (576, 64), (50, 7)] {
        let x = random2((pos, d), 20 + pos as u64, 3.0);
        let g = Array1::from(random(d, 21, 0.5)) + 1.0;
        let (scale, h) = ops_f32(&ctx).rmsnorm(x.view(), g.view(), 1e-5).unwrap();
        let (want_scale, want_h) = ops::rmsnorm(x.view(), g.view(), 1e-5);
        check(&format!("rmsnorm scale pos {pos}, d {d}"), &scale.to_vec(), &want_scale.to_vec(), KERNEL_RMSNORM);
        check(&format!("rmsnorm pos {pos}, d {d}"), &flat(&h), &flat(&want_h), KERNEL_RMSNORM);
        let given = ops_f32(&ctx).rms_apply(x.view(), want_scale.view(), g.view()).unwrap();
        check(&format!("rmsnorm from a given scale pos {pos}, d {d}"), &flat(&given), &flat(&ops::rms_apply(x.view(), want_scale.view(), g.view())), KERNEL_RMSNORM);
    }
}

#[test]
fn kernel_rope_matches_cpu() {
    let ctx = gpu_or_skip!();
    use glassbox_engine::load::config::{RopeKind, rope_inv_freq};
    let smollm2 = rope_inv_freq(64, 100_000.0, RopeKind::Default);
    let llama3 = rope_inv_freq(
        8,
        500_000.0,
        RopeKind::Llama3 { factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 512 },
    );
    // The last case scales cos and sin as longrope's attention factor does.
    let cases = [(&smollm2, 9, 1, 0, 1.0), (&smollm2, 3, 7, 0, 1.0), (&smollm2, 9, 64, 0, 1.0), (&smollm2, 3, 1, 2040, 1.0), (&llama3, 8, 7, 300, 1.0), (&llama3, 4, 9, 20, 1.2247)];
    for (inv_freq, heads, n, offset, scale) in cases {
        let d_head = inv_freq.len() * 2;
        let x = random3((n, heads, d_head), 30, 2.0);
        let r = glassbox_engine::load::longrope::Rope { inv_freq, scale };
        let ours = ops_f32(&ctx).rope(x.view(), r, offset).unwrap();
        let name = format!("rope n {n} at {offset}, {heads} heads of {d_head}, scale {scale}");
        check(&name, &flat(&ours), &flat(&ops::rope(x.view(), r, offset)), KERNEL_ROPE);
    }
}

/// Scores, mask, softmax and pattern·V at (n new rows, pos_offset) pairs, GQA 9/3 and MHA.
const ATTENTION_CASES: [(usize, usize, usize, usize, usize); 6] = [
    // (n, pos_offset, heads, kv_heads, d_head)
    (1, 0, 9, 3, 64),
    (7, 0, 9, 3, 64),
    (64, 0, 9, 3, 64),
    (1, 63, 9, 3, 64),
    (7, 20, 9, 3, 64),
    (7, 4, 6, 6, 8),
];

#[test]
fn kernel_attention_scores_mask_and_softmax_match_cpu() {
    let ctx = gpu_or_skip!();
    let gpu = ops_f32(&ctx);
    for (n, offset, heads, kv_heads, d_head) in ATTENTION_CASES {
        let name = format!("attention n {n} at {offset}, {heads}/{kv_heads} heads");
        let q = random3((n, heads, d_head), 40, 1.5);
        let k = random3((offset + n, kv_heads, d_head), 41, 1.5);
        let raw = gpu.attention_scores(q.view(), k.view()).unwrap();
        let want_raw = ops::attention_scores(q.view(), k.view(), heads / kv_heads);
        check(&format!("{name}: scores"), &flat(&raw), &flat(&want_raw), KERNEL_SCORES);
        // Mask and softmax on the CPU's scores, so each kernel is judged on its own.
        let masked = gpu.causal_mask(want_raw.view(), offset).unwrap();
        let want_masked = ops::causal_mask(want_raw.view(), offset);
        check(&format!("{name}: mask"), &flat(&masked), &flat(&want_masked), EXACT);
        let pattern = gpu.softmax_last(want_masked.view()).unwrap();
        let want_pattern = ops::softmax_last(want_masked.view());
        check(&format!("{name}: softmax"), &flat(&pattern), &flat(&want_pattern), KERNEL_SOFTMAX);
        for (ours, want) in pattern.iter().zip(&want_pattern) {
            assert!(*want != 0.0 || *ours == 0.0, "{name}: a masked entry is not exactly 0");
        }
    }
}

#[test]
fn kernel_attend_matches_cpu_with_gqa() {
    let ctx = gpu_or_skip!();
    for (n, offset, heads, kv_heads, d_head) in ATTENTION_CASES {
        let name = format!("pattern·V n {n} at {offset}, {heads}/{kv_heads} heads");
        let k_len = offset + n;
        let scores = random3((heads, n, k_len), 50, 4.0);
        let pattern = ops::softmax_last(ops::causal_mask(scores.view(), offset).view());
        let v = random3((k_len, kv_heads, d_head), 51, 1.0);
        let z = ops_f32(&ctx).attend(pattern.view(), v.view()).unwrap();
        check(&name, &flat(&z), &flat(&ops::attend(pattern.view(), v.view(), heads / kv_heads)), KERNEL_ATTEND);
    }
}

#[test]
fn kernel_elementwise_ops_match_cpu() {
    let ctx = gpu_or_skip!();
    let gpu = ops_f32(&ctx);
    for pos in [1, 7, 64] {
        let mut gate = random2((pos, 1536), 60, 8.0);
        gate[[0, 0]] = -120.0; // exp(120) overflows f32: the kernel must not make inf or NaN
        gate[[0, 1]] = 120.0;
        let up = random2((pos, 1536), 61, 2.0);
        let post = gpu.silu_mul(gate.view(), up.view()).unwrap();
        check(&format!("silu·mul pos {pos}"), &flat(&post), &flat(&ops::silu_mul(gate.view(), up.view())), KERNEL_SILU_MUL);
        let x = random2((pos, 576), 62, 5.0);
        let y = random2((pos, 576), 63, 5.0);
        let sum = gpu.add(x.view(), y.view()).unwrap();
        check(&format!("residual add pos {pos}"), &flat(&sum), &flat(&(&x + &y)), EXACT);
    }
}

#[test]
fn kernel_vocab_softmax_with_temperature_matches_cpu() {
    let ctx = gpu_or_skip!();
    for (rows, t) in [(1, 1.0), (7, 0.7), (1, 0.0), (3, 2.5)] {
        let logits = random2((rows, 49152), 70 + rows as u64, 12.0);
        let ours = ops_f32(&ctx).softmax_rows(logits.view(), t).unwrap();
        let want = ops::softmax_rows(logits.view(), t);
        check(&format!("probs rows {rows}, T {t}"), &flat(&ours), &flat(&want), KERNEL_PROBS);
    }
}

#[test]
fn kernel_f16_weights_packed_and_native() {
    let ctx = gpu_or_skip!();
    let mut formats = vec![WeightFormat::F16Packed];
    if ctx.has_shader_f16() {
        formats.push(WeightFormat::F16Native);
    } else {
        eprintln!("note: this adapter has no shader-f16; only the packed f16 path is tested");
    }
    let w = random2((1536, 576), 80, 0.1);
    let w16 = w.mapv(round_to_f16); // what the GPU holds
    for format in formats {
        let gpu = GpuOps::new(Arc::clone(&ctx), format).unwrap();
        for pos in [1, 7, 64] {
            let x = random2((pos, 576), 81, 1.0);
            let ours = gpu.linear(x.view(), w.view(), u64::MAX).unwrap();
            let name = format!("{} linear pos {pos}", format.name());
            check(&format!("{name} vs f16-rounded CPU"), &flat(&ours), &flat(&ops::linear(x.view(), w16.view()).unwrap()), KERNEL_LINEAR_F16_WEIGHTS);
            check(&format!("{name} vs f32 CPU"), &flat(&ours), &flat(&ops::linear(x.view(), w.view()).unwrap()), KERNEL_F16_ROUNDING);
        }
        let ids = [0u32, 1535, 3, 4];
        let rows = gpu.embed(w.view(), &ids, u64::MAX).unwrap();
        let want = Array2::from_shape_fn((ids.len(), 576), |(p, j)| w16[[ids[p] as usize, j]]);
        assert_eq!(rows, want, "{}: embedding gather", format.name());
    }
}

#[test]
fn kernel_intervene_and_rounding_match_the_cpu_exactly() {
    let ctx = gpu_or_skip!();
    let c = load("tiny-smollm2-shape").config.clone();
    let dims = PassDims { n: 5, k_len: 9, logit_rows: 5 };
    let source = |dims: Vec<Dim>, shape: &[usize], seed| {
        let data = ndarray::ArrayD::from_shape_vec(IxDyn(shape), random(shape.iter().product(), seed, 3.0)).unwrap();
        Values { tensor: Arc::new(Tensor::new(dims, data).unwrap()), first_position: 0 }
    };
    let resid = HookKey::Block(1, BlockHook::ResidPost);
    let cases = [
        Intervention::zero_heads(0, vec![1, 7]),
        Intervention::zero(resid).positions(vec![5, 7]),
        Intervention::new(HookKey::Block(0, BlockHook::MlpPost), Edit::Scale(-2.5)).features(vec![0, 3, 383]),
        Intervention::new(resid, Edit::Add(source(vec![Dim::DModel], &[576], 1))).positions(vec![6]),
        Intervention::new(HookKey::Block(1, BlockHook::Pattern), Edit::Replace(source(vec![Dim::Head, Dim::QPos, Dim::KPos], &[9, 9, 9], 2)))
            .heads(vec![4])
            .positions(vec![8]),
        Intervention::new(HookKey::Logits, Edit::Add(source(vec![Dim::Vocab], &[300], 3))),
    ];
    for (i, case) in cases.iter().enumerate() {
        let r = case.resolve(&c, dims, 4).unwrap();
        let data = ndarray::ArrayD::from_shape_vec(IxDyn(&r.shape), random(r.shape.iter().product(), 10 + i as u64, 5.0)).unwrap();
        let mut want = data.clone();
        r.apply(want.view_mut()).unwrap();
        let ours = ops_f32(&ctx).intervene(data.view(), &r).unwrap();
        check(&format!("intervention {i} on {}", case.hook), &flat(&ours), &flat(&want), EXACT);
        assert_ne!(want, data, "case {i} edits something");
    }
    let mut data: Vec<f32> = random(4096, 99, 1000.0);
    data.extend([1.0 + 2f32.powi(-11), 1.0 + 2f32.powi(-8), 65519.0, 1e-6, -0.0]);
    let data = ndarray::ArrayD::from_shape_vec(IxDyn(&[data.len()]), data).unwrap();
    for precision in [ActivationPrecision::F16, ActivationPrecision::Bf16] {
        let ours = ops_f32(&ctx).round(data.view(), precision).unwrap();
        let want = data.mapv(|v| precision.round(v));
        check(&format!("rounding to {}", precision.name()), &flat(&ours), &flat(&want), EXACT);
    }
}

// ---------------------------------------------------------------- other families' kernels

#[test]
fn kernel_layernorm_matches_cpu() {
    let ctx = gpu_or_skip!();
    // GPT-2/BERT fixture width, SmolLM2's, odd; rows off-centre so the mean matters.
    for (d, pos) in [(48, 1), (48, 9), (576, 7), (768, 64), (50, 7)] {
        let x = random2((pos, d), 120 + pos as u64, 3.0) + 1.5;
        let g = Array1::from(random(d, 121, 0.5)) + 1.0;
        let b = Array1::from(random(d, 122, 0.3));
        for eps in [1e-5, 1e-12] {
            let (scale, h) = ops_f32(&ctx).layernorm(x.view(), g.view(), b.view(), eps).unwrap();
            let want_scale = ops::ln_scale(x.view(), eps);
            let want_h = ops::ln_apply(x.view(), want_scale.view(), g.view(), b.view()).unwrap();
            check(&format!("layernorm scale pos {pos}, d {d}, eps {eps:e}"), &scale.to_vec(), &want_scale.to_vec(), KERNEL_LAYERNORM);
            check(&format!("layernorm pos {pos}, d {d}, eps {eps:e}"), &flat(&h), &flat(&want_h), KERNEL_LAYERNORM);
        }
        let scale = ops::ln_scale(x.view(), 1e-5) * 1.7; // an edited scale
        let given = ops_f32(&ctx).ln_apply(x.view(), scale.view(), g.view(), b.view()).unwrap();
        let want = ops::ln_apply(x.view(), scale.view(), g.view(), b.view()).unwrap();
        check(&format!("layernorm from a given scale pos {pos}, d {d}"), &flat(&given), &flat(&want), KERNEL_LAYERNORM);
    }
}

#[test]
fn kernel_qk_norm_matches_cpu() {
    let ctx = gpu_or_skip!();
    // (pos, heads, d_head): the Gemma fixture's q and k, Gemma 3 270M's, odd.
    for (pos, heads, d_head) in [(9, 4, 16), (9, 1, 16), (1, 4, 256), (64, 1, 256), (5, 3, 50)] {
        let x = random3((pos, heads, d_head), 130 + pos as u64, 4.0);
        let g = Array1::from(random(d_head, 131, 0.5)) + 1.0;
        let ours = ops_f32(&ctx).rms_heads(x.view(), g.view(), 1e-6).unwrap();
        let want = ops::rms_heads(x.view(), g.view(), 1e-6).unwrap();
        check(&format!("qk-norm pos {pos}, {heads} heads of {d_head}"), &flat(&ours), &flat(&want), KERNEL_QK_NORM);
    }
}

#[test]
fn kernel_bias_and_scale_are_exact() {
    let ctx = gpu_or_skip!();
    let gpu = ops_f32(&ctx);
    for (rows, cols) in [(1, 48), (9, 144), (7, 97), (64, 576)] {
        let x = random2((rows, cols), 140 + rows as u64, 5.0);
        let b = Array1::from(random(cols, 141, 2.0));
        let ours = gpu.add_bias(x.view(), b.view()).unwrap();
        check(&format!("row bias {rows}×{cols}"), &flat(&ours), &flat(&ops::add_bias(x.clone(), Some(&b)).unwrap()), EXACT);
        let s = (640f32).sqrt(); // Gemma 3 270M's embedding scale
        let scaled = gpu.scale(x.view(), s).unwrap();
        check(&format!("scale {rows}×{cols}"), &flat(&scaled), &flat(&(&x * s)), EXACT);
    }
}

#[test]
fn kernel_scaled_scores_and_sliding_mask_match_cpu() {
    let ctx = gpu_or_skip!();
    use glassbox_engine::load::arch::AttnMask;
    let gpu = ops_f32(&ctx);
    // (n, pos_offset, heads, kv_heads, d_head, scale): Gemma's query_pre_attn_scalar^-0.5.
    for (n, offset, heads, kv_heads, d_head, scale) in [(9, 0, 4, 1, 16, 0.25f32), (1, 20, 4, 1, 256, 0.0625), (7, 5, 4, 4, 12, 0.3)] {
        let name = format!("scores n {n} at {offset}, {heads}/{kv_heads} heads, scale {scale}");
        let q = random3((n, heads, d_head), 150, 1.5);
        let k = random3((offset + n, kv_heads, d_head), 151, 1.5);
        let ours = gpu.attention_scores_scaled(q.view(), k.view(), scale).unwrap();
        let mut want = ndarray::Array3::<f32>::zeros((0, 0, 0));
        glassbox_engine::exec::cpu::attention::scores_into(q.view(), k.view(), heads / kv_heads, scale, None, &mut want);
        check(&name, &flat(&ours), &flat(&want), KERNEL_SCORES);
        for m in [AttnMask::Sliding { window: 1 }, AttnMask::Sliding { window: 4 }, AttnMask::Sliding { window: 512 }, AttnMask::Causal, AttnMask::Bidirectional] {
            let masked = gpu.mask_with(want.view(), offset, m).unwrap();
            let mut want_masked = want.clone();
            ops::mask_with_in_place(want_masked.view_mut(), offset, m);
            check(&format!("{name}: mask {m:?}"), &flat(&masked), &flat(&want_masked), EXACT);
        }
    }
}

#[test]
fn kernel_mlp_activations_match_cpu() {
    let ctx = gpu_or_skip!();
    use glassbox_engine::load::arch::Activation;
    let gpu = ops_f32(&ctx);
    for pos in [1, 9, 64] {
        let mut gate = random2((pos, 640), 160 + pos as u64, 6.0);
        gate[[0, 0]] = -120.0; // far tails: no inf or NaN
        gate[[0, 1]] = 120.0;
        gate[[0, 2]] = 0.0;
        gate[[0, 3]] = -1e-4;
        let up = random2((pos, 640), 161, 2.0);
        let post = gpu.gelu_mul(gate.view(), up.view()).unwrap();
        check(&format!("gelu_tanh·mul pos {pos}"), &flat(&post), &flat(&ops::gelu_mul(gate.view(), up.view())), KERNEL_GELU);
        for (act, bound) in [(Activation::Gelu, KERNEL_GELU), (Activation::GeluTanh, KERNEL_GELU), (Activation::Relu, EXACT), (Activation::Silu, KERNEL_SILU_MUL)] {
            let ours = gpu.activate(gate.view(), act).unwrap();
            check(&format!("{} pos {pos}", act.name()), &flat(&ours), &flat(&ops::activate(gate.view(), act)), bound);
        }
    }
}
