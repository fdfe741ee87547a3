//! Training against references: gradients vs torch autograd on every fixture that ships
//! `grad.safetensors`, and vs finite differences on a model no reference was made for;
//! AdamW vs `torch.optim.AdamW`; data-parallel workers vs one; checkpoints that round-trip.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use glassbox_engine::train::{self, Params};
use glassbox_engine::{HookKey, Model};
use glassbox_tests::{fixtures_dir, max_abs, max_abs_diff, read_goldens};

const GRAD_FIXTURES: [&str; 3] = ["tiny-gqa-tied", "tiny-mha-untied", "tiny-llama31-rope-scaling"];

fn load(name: &str) -> (Arc<Model>, Params) {
    let dir = fixtures_dir().join(name);
    let model = Arc::new(Model::load(&dir).unwrap_or_else(|e| panic!("{name}: {e}")));
    let params = Params::load_dir(&dir, &model.config).unwrap();
    (model, params)
}

#[test]
fn grad_matches_torch_autograd_on_every_fixture() {
    for name in GRAD_FIXTURES {
        let (model, params) = load(name);
        let refs = read_goldens(&fixtures_dir().join(name).join("grad.safetensors")).unwrap();
        let ids: Vec<u32> = refs["input_ids"].values.iter().map(|&v| v as u32).collect();
        let g = train::gradients_of(&model, &params, &ids).unwrap();
        let loss_ref = refs["loss"].values[0];
        assert!((g.loss.loss - loss_ref).abs() <= 1e-5, "{name}: loss {} vs {loss_ref}", g.loss.loss);
        let (mut n_params, mut n_hooks) = (0, 0);
        for (key, reference) in refs.iter().filter_map(|(k, v)| Some((k.strip_prefix("grad.")?, v))) {
            let (shape, values): (Vec<usize>, Vec<f32>) = match key.parse::<HookKey>() {
                Ok(hook) => {
                    n_hooks += 1;
                    let t = g.hooks.get(hook).unwrap_or_else(|| panic!("{name}: no gradient for hook {key}"));
                    (t.shape().to_vec(), t.data.iter().copied().collect())
                }
                Err(_) => {
                    n_params += 1;
                    let t = g.params.get(key).unwrap_or_else(|| panic!("{name}: no gradient for {key}"));
                    (t.shape().to_vec(), t.iter().copied().collect())
                }
            };
            assert_eq!(shape, reference.shape, "{name}: {key} shape");
            let err = max_abs_diff(&values, &reference.values);
            let bound = 1e-4 * max_abs(&reference.values);
            assert!(err <= bound, "{name}: grad.{key}: max abs error {err:e} > {bound:e}");
        }
        assert_eq!(n_params, params.len(), "{name}: every parameter has a reference gradient");
        let layers = model.config.n_layers();
        assert_eq!(n_hooks, 3 + 2 * layers, "{name}: hook gradients compared");
    }
}

fn loss_of(c: &glassbox_engine::LlamaConfig, params: &Params, ids: &[u32]) -> f64 {
    use glassbox_engine::exec::executor::{Executor, PassOptions};
    let source = glassbox_engine::load::model::ModelSource { dir: "fd".into(), name: "fd".into(), weights_note: String::new() };
    let model = Arc::new(params.to_model(c, None, source).unwrap());
    let mut exec = glassbox_engine::exec::cpu::CpuExecutor::new(model);
    let trace = exec.forward(ids, PassOptions::capture(glassbox_engine::CaptureFilter::keys([HookKey::Logits]))).unwrap();
    let logits = trace.get(HookKey::Logits).unwrap().as_2d().unwrap();
    f64::from(train::loss::next_token_loss(logits, ids).unwrap().loss)
}

/// A checkpoint no reference was made for (odd sizes, 3-way GQA, untied head, three layers),
/// written to disk and loaded back as any model is: the gradient of every parameter tensor
/// agrees with a central finite difference of the CPU forward pass along that gradient's
/// direction, and along one random direction through all parameters at once.
#[test]
fn grad_matches_finite_differences_on_an_unseen_checkpoint() {
    let mut c = train::presets::tiny_config(37, 36, 50, 3, 6, 2, false);
    c.rope_theta = Some(500.0);
    c.rms_norm_eps = 1e-6;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("unseen");
    train::checkpoint::save_checkpoint(&dir, &c, &Params::init(&c, 77, 0.3), None, "random").unwrap();
    let model = Arc::new(Model::load(&dir).unwrap());
    let c = model.config.clone();
    let params = Params::load_dir(&dir, &c).unwrap();
    let ids = [3u32, 17, 5, 36, 3, 17, 5, 0, 22, 9, 3];
    let g = train::gradients_of(&model, &params, &ids).unwrap();
    assert!((f64::from(g.loss.loss) - loss_of(&c, &params, &ids)).abs() < 1e-6);
    let eps = 1e-2f32;
    let directional = |dir: &Params| -> f64 {
        let shifted = |sign: f32| {
            let mut p = params.clone();
            for (name, t) in p.iter_mut() {
                if let Some(d) = dir.get(name) {
                    t.zip_mut_with(d, |w, &u| *w += sign * eps * u);
                }
            }
            loss_of(&c, &p, &ids)
        };
        (shifted(1.0) - shifted(-1.0)) / (2.0 * f64::from(eps))
    };
    for (name, grad) in g.params.iter() {
        let norm = grad.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>().sqrt();
        assert!(norm > 0.0, "{name}: zero gradient");
        let mut unit = Params::default();
        unit.insert(name, grad.mapv(|v| (f64::from(v) / norm) as f32));
        let fd = directional(&unit);
        assert!((fd - norm).abs() <= 1e-3 + 2e-2 * norm, "{name}: finite difference {fd:.6} vs |grad| {norm:.6}");
    }
    let mut rng = train::rng::Rng::new(5);
    let mut random = g.params.zeros_like();
    for (_, t) in random.iter_mut() {
        t.mapv_inplace(|_| rng.normal());
    }
    let scale = random.global_norm();
    random.scale(1.0 / scale);
    let predicted: f64 = g
        .params
        .iter()
        .map(|(n, t)| t.iter().zip(random.get(n).unwrap().iter()).map(|(a, b)| f64::from(*a) * f64::from(*b)).sum::<f64>())
        .sum();
    let fd = directional(&random);
    assert!((fd - predicted).abs() <= 1e-3 + 2e-2 * predicted.abs(), "random direction: {fd:.6} vs {predicted:.6}");
}

/// Three `torch.optim.AdamW` steps (lr 1e-3, betas 0.9/0.95, eps 1e-8, weight decay 0.1 on
/// rank ≥ 2) on each fixture's input: the loss before each step and the weights after steps
/// 1 and 3.
#[test]
fn adamw_matches_torch_on_every_fixture() {
    for name in GRAD_FIXTURES {
        let (model, mut params) = load(name);
        let c = model.config.clone();
        let refs = read_goldens(&fixtures_dir().join(name).join("adamw.safetensors")).unwrap();
        let ids: Vec<u32> = read_goldens(&fixtures_dir().join(name).join("grad.safetensors")).unwrap()["input_ids"]
            .values
            .iter()
            .map(|&v| v as u32)
            .collect();
        let cfg = train::AdamWConfig { beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: 0.1 };
        let mut opt = train::AdamW::new(cfg, &params);
        for step in 0..3 {
            let source = glassbox_engine::load::model::ModelSource { dir: "x".into(), name: "x".into(), weights_note: String::new() };
            let m = Arc::new(params.to_model(&c, None, source).unwrap());
            let g = train::gradients_of(&m, &params, &ids).unwrap();
            let want = refs[&format!("loss.step{step}")].values[0];
            assert!((g.loss.loss - want).abs() <= 1e-5, "{name}: loss before step {step}: {} vs {want}", g.loss.loss);
            opt.step(&mut params, &g.params, 1e-3);
            if step == 0 || step == 2 {
                let mut compared = 0;
                for (pname, w) in params.iter() {
                    let r = &refs[&format!("step{}.{pname}", step + 1)];
                    let ours: Vec<f32> = w.iter().copied().collect();
                    let err = max_abs_diff(&ours, &r.values);
                    assert!(err <= 5e-5, "{name}: {pname} after step {}: max abs error {err:e}", step + 1);
                    compared += 1;
                }
                assert_eq!(compared, params.len());
            }
        }
    }
}

/// Data parallel, honestly simulated: the all-reduced mean of 2 or 4 workers' shard gradients
/// is the single worker's gradient on the whole batch, and whole training runs agree.
#[test]
fn two_and_four_workers_take_the_same_step_as_one_bit_for_bit() {
    let (model, params) = load("tiny-gqa-tied");
    let mut rng = train::rng::Rng::new(9);
    let batch: Vec<Vec<u32>> = (0..8).map(|_| (0..12).map(|_| rng.below(97) as u32).collect()).collect();
    let one = train::batch_gradients(&model.config, &params, &model, &batch, 1, train::Precision::F32).unwrap();
    assert_eq!(one.worker_norms.len(), 1);
    for workers in [2, 4] {
        let many = train::batch_gradients(&model.config, &params, &model, &batch, workers, train::Precision::F32).unwrap();
        assert_eq!(many.worker_norms.len(), workers);
        assert!(many.worker_norms.iter().all(|&n| n > 0.0));
        // The all-reduce adds sequences in batch order: the same bits whatever the shards.
        assert_eq!(many.loss.to_bits(), one.loss.to_bits(), "{workers} workers: loss {} vs {}", many.loss, one.loss);
        assert_eq!(many.grads, one.grads, "{workers} workers: gradients bit for bit");
    }
    assert!(train::batch_gradients(&model.config, &params, &model, &batch, 3, train::Precision::F32).is_err());

    let run = |workers| {
        let opts = train::TrainOptions { steps: Some(5), workers, eval_every: Some(100), ..Default::default() };
        let mut t = train::Trainer::new(opts).unwrap();
        let losses: Vec<f32> = (0..5).map(|_| t.train_step().unwrap().loss).collect();
        (losses, t.params)
    };
    let (l1, p1) = run(1);
    for workers in [2, 4] {
        let (l, p) = run(workers);
        assert_eq!(l, l1, "{workers} workers: the same curve, bit for bit");
        assert_eq!(p, p1, "{workers} workers: the same weights after 5 steps, bit for bit");
    }
    // BERT's masked-LM steps shard the same way.
    let mlm = |workers| {
        let opts = train::TrainOptions { steps: Some(3), workers, eval_every: Some(100), recipe: train::recipes::Recipe::BertMlm, ..Default::default() };
        let mut t = train::Trainer::new(opts).unwrap();
        (0..3).map(|_| t.train_step().unwrap().loss).collect::<Vec<f32>>()
    };
    assert_eq!(mlm(4), mlm(1), "masked LM: 4 workers as one, bit for bit");
}

/// A checkpoint is an HF folder Glassbox opens like any model: the same weights bit for bit,
/// the same logits as the in-memory model, a config.json transformers reads, safetensors
/// metadata `format = pt`, and a tokenizer.json that loads.
#[test]
fn checkpoints_round_trip_and_open_as_models() {
    use glassbox_engine::exec::executor::{Executor, PassOptions};
    for preset in [train::Preset::Induction, train::Preset::Text] {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("run");
        let opts = train::TrainOptions { preset, steps: Some(2), eval_every: Some(1), out: Some(out.clone()), ..Default::default() };
        let mut t = train::Trainer::new(opts).unwrap();
        let summary = t.run(&mut |_| {}).unwrap();
        assert_eq!(summary.losses.len(), 2);
        assert_eq!(summary.evals.iter().map(|e| e.step).collect::<Vec<_>>(), [0, 1, 2]);
        let saved = train::checkpoint::list_checkpoints(&out);
        assert_eq!(saved.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [1, 2]);

        let loaded = Arc::new(Model::load(&out).unwrap());
        assert_eq!(loaded.config.n_params(), t.config().n_params());
        assert!(loaded.source.weights_note.contains("trained by Glassbox"), "{}", loaded.source.weights_note);
        let back = Params::load_dir(&out, &loaded.config).unwrap();
        assert_eq!(back, t.params, "{preset:?}: weights round-trip bit for bit");
        let ids: Vec<u32> = t.data.eval_set()[0].clone();
        let logits = |m: Arc<Model>| {
            let mut e = glassbox_engine::exec::cpu::CpuExecutor::new(m);
            let tr = e.forward(&ids, PassOptions::capture(glassbox_engine::CaptureFilter::keys([HookKey::Logits]))).unwrap();
            tr.get(HookKey::Logits).unwrap().data.clone()
        };
        assert_eq!(logits(loaded.clone()), logits(t.model().unwrap()));

        let bytes = std::fs::read(out.join("model.safetensors")).unwrap();
        let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
        assert_eq!(meta.metadata().as_ref().and_then(|m| m.get("format")).map(String::as_str), Some("pt"));
        let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
        assert_eq!(config["architectures"][0], "LlamaForCausalLM");
        assert_eq!(config["model_type"], "llama");
        assert_eq!(config["tie_word_embeddings"], true);
        let tok = loaded.tokenizer.as_ref().expect("tokenizer.json loads");
        match preset {
            train::Preset::Induction => assert_eq!(tok.encode("<s> t5 t9 t5").unwrap(), [0, 5, 9, 5]),
            train::Preset::Text => {
                let ids = tok.encode("The little cat 小猫").unwrap();
                assert_eq!(tok.decode(&ids).unwrap(), "The little cat 小猫");
                assert!(ids.len() < "The little cat 小猫".len(), "BPE merges shorten the text");
            }
        }
    }
}

/// The `induction` preset with its defaults (seed 1): the held-out loss on the repeated
/// half falls below half its starting value and an induction head forms (score > 0.4).
/// About 3 s in release; the steps/second figure is `glassbox train --json`'s, not this test's.
#[test]
fn the_induction_preset_shows_the_phase_change() {
    let mut t = train::Trainer::new(train::TrainOptions::default()).unwrap();
    let s = t.run(&mut |_| {}).unwrap();
    let (first, last) = (&s.evals[0], s.evals.last().unwrap());
    assert_eq!(last.step, 250);
    assert!((first.loss - (63f32).ln()).abs() < 0.2, "starts at about ln(63): {}", first.loss);
    assert!(last.loss < first.loss / 2.0, "held-out repeated-half loss {} → {}", first.loss, last.loss);
    assert!(last.induction_score > 0.4, "induction score {}", last.induction_score);
    assert!(first.induction_score < 0.2);
    assert!(last.other_loss > 3.0, "the random first half stays unpredictable: {}", last.other_loss);
    // Seeded: the same options give the same run.
    let mut again = train::Trainer::new(train::TrainOptions { steps: Some(250), ..Default::default() }).unwrap();
    let first_losses: Vec<f32> = (0..3).map(|_| again.train_step().unwrap().loss).collect();
    assert_eq!(first_losses, s.losses[..3]);
}

/// The `text` preset: a BPE trained on the bundled corpus, and a few steps that lower the
/// held-out loss and produce samples.
#[test]
fn the_text_preset_trains_a_tokenizer_and_learns() {
    let opts = train::TrainOptions { preset: train::Preset::Text, steps: Some(30), eval_every: Some(30), ..Default::default() };
    let mut t = train::Trainer::new(opts).unwrap();
    let tok = t.data.tokenizer().unwrap();
    assert!(tok.get_vocab_size(true) > 400, "merges learned: {}", tok.get_vocab_size(true));
    let s = t.run(&mut |_| {}).unwrap();
    let (first, last) = (&s.evals[0], s.evals.last().unwrap());
    assert!(last.loss < first.loss - 0.5, "held-out loss {} → {}", first.loss, last.loss);
    assert_eq!(last.samples.len(), 2);
    assert!(last.samples[0].starts_with("The little") && last.samples[1].starts_with("小猫"));
}

/// Mixed precision: the bf16 run computes with bf16-rounded weights, activations and
/// gradients (so its numbers differ), keeps f32 master weights, and tracks the f32 run.
#[test]
fn bf16_training_rounds_but_tracks_f32() {
    let run = |precision| {
        let mut t = train::Trainer::new(train::TrainOptions { precision, steps: Some(40), ..Default::default() }).unwrap();
        let losses: Vec<f32> = (0..40).map(|_| t.train_step().unwrap().loss).collect();
        (losses, t)
    };
    let (f32_losses, f32_run) = run(train::Precision::F32);
    let (bf16_losses, mut bf16_run) = run(train::Precision::Bf16);
    assert_ne!(f32_losses, bf16_losses, "bf16 changes the numbers");
    for (a, b) in f32_losses.iter().zip(&bf16_losses) {
        assert!((a - b).abs() < 0.05, "bf16 tracks f32: {a} vs {b}");
    }
    let is_bf16 = |v: f32| train::precision::bf16(v) == v;
    let compute = bf16_run.compute_params();
    assert!(compute.iter().all(|(_, t)| t.iter().all(|&v| is_bf16(v))));
    assert!(bf16_run.params.iter().any(|(_, t)| t.iter().any(|&v| !is_bf16(v))), "master weights stay f32");
    let inspected = bf16_run.train_step_inspected().unwrap();
    for trace in [&inspected.forward, &inspected.grads.hooks] {
        assert!(trace.len() > 10);
        for key in trace.keys() {
            let t = trace.get(key).unwrap();
            assert!(t.data.iter().all(|&v| !v.is_finite() || is_bf16(v)), "{key} is bf16");
        }
    }
    drop(f32_run);
}

/// The real SmolLM2-135M (30 layers, 9/3 heads, tied 49152-token head), when cached: the
/// loss and gradient of a short sentence agree with a central finite difference of the CPU
/// forward pass along the gradient's own direction (d loss / d t of θ + t·g/|g| = |g|).
#[test]
fn grad_matches_finite_differences_on_smollm2() {
    let Some(model) = glassbox_tests::golden::smollm2() else { return };
    let c = model.config.clone();
    let params = Params::load_dir(&model.source.dir, &c).unwrap();
    let ids = model.tokenizer.as_ref().unwrap().encode("The capital of France is Paris.").unwrap();
    let g = train::gradients_of(&model, &params, &ids).unwrap();
    let norm = f64::from(g.params.global_norm());
    let eps = 1e-3f32;
    let shifted = |sign: f32| {
        let mut p = params.clone();
        for (name, t) in p.iter_mut() {
            let d = g.params.get(name).unwrap();
            t.zip_mut_with(d, |w, &u| *w += sign * eps * u / norm as f32);
        }
        loss_of(&c, &p, &ids)
    };
    let fd = (shifted(1.0) - shifted(-1.0)) / (2.0 * f64::from(eps));
    assert!((fd - norm).abs() <= 2e-2 * norm, "finite difference {fd:.5} vs |grad| {norm:.5}");
    eprintln!("SmolLM2: loss {:.5}, finite difference {fd:.5} vs |grad| {norm:.5}", g.loss.loss);
}
