//! The llama.cpp engine (`--features llamacpp`): with and without two `glassbox rpc-server`s on
//! 127.0.0.1 every captured hook is the same bits and the greedy tokens the same (tiny Q4_1
//! fixture, SmolLM2 Q4_1, Gemma 3 270M Q4_K_M); a bad `--rpc`
//! is a quick one-line error. (Against Glassbox's own executor: `llamacpp/tests/`.)
#![cfg(feature = "llamacpp")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use glassbox_engine::exec::executor::{Executor, PassOptions, generate};
use glassbox_engine::exec::sampling::SamplingParams;
use glassbox_engine::{CaptureFilter, Model, Trace};
use glassbox_engine::load::fetch::KnownModel;
use glassbox_llamacpp::{LlamaCppExecutor, Options};
use glassbox_tests::as_downloaded::{kept_gguf, tiny_q4_1_gguf};

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


fn models() -> Vec<PathBuf> {
    let real = [KnownModel::SmolLm2, KnownModel::Gemma3_270m];
    std::iter::once(tiny_q4_1_gguf()).chain(real.into_iter().filter_map(kept_gguf)).collect()
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

#[test]
fn a_bad_rpc_address_is_a_quick_one_line_error() {
    let gguf = tiny_q4_1_gguf();
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
