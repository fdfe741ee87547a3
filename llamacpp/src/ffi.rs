//! What llama-cpp-sys-2's bindings do not generate, declared by hand: its `wrapper.h` includes
//! `llama.h` and `gguf.h` only, so `ggml-rpc.h` (built and linked with `GGML_RPC=ON`) is
//! declared here from the vendored header (`llama.cpp/ggml/include/ggml-rpc.h`, protocol 7).
#![allow(unsafe_code)]

use std::ffi::{c_char, c_void};

pub use llama_cpp_sys_2::*;

unsafe extern "C" {
    /// Registers the server at `endpoint` (`host:port`) and returns its backend registry, whose
    /// devices a model can be split across; null when the server has no device. Connects at
    /// once and aborts the process when it cannot: callers check the address first.
    pub fn ggml_backend_rpc_add_server(endpoint: *const c_char) -> ggml_backend_reg_t;

    /// Serves `devices` at `endpoint` until the process ends; returns only when it could not
    /// start (a bad endpoint, a port in use).
    pub fn ggml_backend_rpc_start_server(
        endpoint: *const c_char,
        cache_dir: *const c_char,
        n_threads: usize,
        n_devices: usize,
        devices: *mut ggml_backend_dev_t,
    );
}

/// llama.cpp's and ggml's log lines dropped, unless `GLASSBOX_LLAMACPP_LOG` is set: they would
/// drown the CLI's output (a line per tensor loaded).
unsafe extern "C" fn quiet_log(_level: ggml_log_level, text: *const c_char, _user: *mut c_void) {
    if std::env::var_os("GLASSBOX_LLAMACPP_LOG").is_some() && !text.is_null() {
        // SAFETY: ggml hands a NUL-terminated string valid for the duration of the call.
        let s = unsafe { std::ffi::CStr::from_ptr(text) };
        eprint!("{}", s.to_string_lossy());
    }
}

/// Initialises llama.cpp's backends once per process and quiets its logging.
pub fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: both are process-wide setup calls with no preconditions; the callback is a
        // plain function that lives for the whole program.
        unsafe {
            llama_log_set(Some(quiet_log), std::ptr::null_mut());
            llama_backend_init();
        }
    });
}
