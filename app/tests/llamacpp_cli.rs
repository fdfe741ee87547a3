//! The llama.cpp engine (`--features llamacpp`): with and without two `glassbox rpc-server`s on
//! 127.0.0.1 every captured hook is the same bits and the greedy tokens the same; against
//! Glassbox's own CPU executor on the same GGUF the hooks differ only by llama.cpp's quantized
//! activations (printed per hook) and the next token agrees; a bad `--rpc` is a quick one-line
//! error.
#![cfg(feature = "llamacpp")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use glassbox_engine::exec::backend;
use glassbox_engine::exec::executor::{Executor, PassOptions, generate};
use glassbox_engine::exec::sampling::SamplingParams;
use glassbox_engine::{CaptureFilter, Device, Model, Precision, Trace};
use glassbox_llamacpp::{LlamaCppExecutor, Options};

const BIN: &str = env!("CARGO_BIN_EXE_glassbox");

/// Two `glassbox rpc-server`s on free loopback ports, killed when dropped.
struct Servers {
    children: Vec<Child>,
    endpoints: Vec<String>,
}

impl Servers {
    fn start(n: usize) -> Self {
        let mut servers = Servers { children: Vec::new(), endpoints: Vec::new() };
        for _ in 0..n {
            let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let child = Command::new(BIN)
                .args(["rpc-server", "--port", &port.to_string(), "--threads", "1"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            servers.children.push(child);
            servers.endpoints.push(format!("127.0.0.1:{port}"));
        }
        for e in &servers.endpoints {
            let deadline = Instant::now() + Duration::from_secs(20);
            while TcpStream::connect(e).is_err() {
                assert!(Instant::now() < deadline, "rpc-server at {e} did not start");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        servers
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/gguf-blocks/Q4_1/model.gguf")
}

/// SmolLM2's Q4_1 GGUF from the cache, or `None` (a failure under `GLASSBOX_REQUIRE_MODEL`).
fn smollm2() -> Option<PathBuf> {
    let dir = glassbox_engine::load::fetch::default_model_dir().ok()?;
    let path = dir.join("SmolLM2-135M-Instruct.Q4_1.gguf");
    if path.exists() {
        return Some(path);
    }
    assert!(std::env::var_os("GLASSBOX_REQUIRE_MODEL").is_none(), "{} is required", path.display());
    eprintln!("note: skipping SmolLM2: {} is not in the cache", path.display());
    None
}

fn models() -> Vec<PathBuf> {
    std::iter::once(fixture()).chain(smollm2()).collect()
}

fn llamacpp(model: &Arc<Model>, gguf: &Path, rpc: &[String]) -> LlamaCppExecutor {
    let options = Options { rpc: rpc.to_vec(), ..Options::default() };
    LlamaCppExecutor::open(model.clone(), gguf, &options).unwrap()
}

fn capture_all(exec: &mut dyn Executor, ids: &[u32]) -> Trace {
    exec.forward(ids, PassOptions::capture(CaptureFilter::All)).unwrap()
}

fn greedy(exec: &mut dyn Executor, ids: &[u32]) -> Vec<u32> {
    generate(exec, ids, 6, SamplingParams::greedy(), &[], &mut |_| ()).unwrap()
}

const IDS: [u32; 6] = [1, 40, 7, 200, 33, 5];

#[test]
fn every_hook_is_bit_identical_with_and_without_rpc() {
    let servers = Servers::start(2);
    for gguf in models() {
        let model = Arc::new(Model::load(&gguf).unwrap());
        let mut local = llamacpp(&model, &gguf, &[]);
        let local_trace = capture_all(&mut local, &IDS);
        let local_tokens = greedy(&mut local, &IDS);
        drop(local);
        let mut remote = llamacpp(&model, &gguf, &servers.endpoints);
        let remote_trace = capture_all(&mut remote, &IDS);
        let remote_tokens = greedy(&mut remote, &IDS);
        drop(remote);
        assert!(local_trace.len() > 10 * model.config.n_layers(), "{}: only {} hooks captured", gguf.display(), local_trace.len());
        assert_eq!(local_trace.len(), remote_trace.len(), "{}", gguf.display());
        for (key, t) in local_trace.iter() {
            let r = remote_trace.get(key).unwrap_or_else(|| panic!("{key} missing over RPC"));
            assert_eq!(t.shape(), r.shape(), "{key}");
            let same = t.data.iter().zip(r.data.iter()).all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{}: {key} differs over RPC", gguf.display());
        }
        assert_eq!(local_tokens, remote_tokens, "{}", gguf.display());
        eprintln!("{}: {} hooks bit-identical over 2 RPC servers; greedy {local_tokens:?}", gguf.display(), local_trace.len());
    }
}

fn relative_error(a: &[f32], b: &[f32]) -> f64 {
    let diff: f64 = a.iter().zip(b).map(|(x, y)| f64::from(x - y).powi(2)).sum();
    let norm: f64 = b.iter().map(|y| f64::from(*y).powi(2)).sum();
    (diff / norm.max(1e-30)).sqrt()
}

#[test]
fn hooks_are_close_to_glassbox_on_the_same_gguf() {
    for gguf in models() {
        let model = Arc::new(Model::load(&gguf).unwrap());
        let ids: Vec<u32> = match &model.tokenizer {
            Some(tok) if model.config.vocab_size > 1000 => tok.encode_prompt("The capital of France is").unwrap(),
            _ => IDS.to_vec(),
        };
        let ours = capture_all(&mut *backend::open(model.clone(), Device::Cpu, Precision::F32, None).unwrap().exec, &ids);
        let theirs = capture_all(&mut llamacpp(&model, &gguf, &[]), &ids);
        let mut worst = (0.0, String::new());
        let mut compared = 0;
        for (key, t) in theirs.iter() {
            let Some(reference) = ours.get(key) else { continue };
            assert_eq!(t.shape(), reference.shape(), "{}: {key}", gguf.display());
            let a: Vec<f32> = t.data.iter().copied().collect();
            let b: Vec<f32> = reference.data.iter().copied().collect();
            let e = relative_error(&a, &b);
            eprintln!("{:<40} relative error {e:.2e}", key.to_string());
            if e > worst.0 {
                worst = (e, key.to_string());
            }
            compared += 1;
        }
        eprintln!("{}: {compared} hooks compared, worst {:.2e} at {}", gguf.display(), worst.0, worst.1);
        assert!(compared > 10 * model.config.n_layers(), "{compared} hooks compared");
        assert!(worst.0 < 0.25, "{}: {} is {:.3} away from Glassbox's", gguf.display(), worst.1, worst.0);
        let top1 = |t: &Trace| glassbox_engine::exec::sampling::argmax(t.last_logits.as_deref().unwrap());
        assert_eq!(top1(&theirs), top1(&ours), "{}: the next token differs", gguf.display());
    }
}

#[test]
fn a_bad_rpc_address_is_a_quick_one_line_error() {
    let gguf = fixture();
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    for rpc in [format!("127.0.0.1:{closed}"), "10.255.255.1:50052".to_string(), "no-port".to_string()] {
        let started = Instant::now();
        let out = Command::new(BIN)
            .args(["trace", "--engine", "llamacpp", "--token-ids", "1,2,3", "--rpc", &rpc, "--model"])
            .arg(&gguf)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{rpc}: succeeded");
        assert!(started.elapsed() < Duration::from_secs(15), "{rpc}: took {:?}", started.elapsed());
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{rpc}: {stderr}");
        assert!(lines[0].contains(&rpc), "{rpc}: {stderr}");
    }
}
