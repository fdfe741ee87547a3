//! A GGUF loaded by llama.cpp with one context over it: the model split across RPC servers
//! when asked, flash attention off (so the pattern exists as a node), every pass decoded with
//! the capture callback on. The only owner of llama.cpp's pointers.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::path::Path;
use std::ptr::NonNull;

use crate::capture::{self, Capture};
use crate::ffi;
use crate::rpc;

/// How to open a session.
#[derive(Debug, Clone)]
pub struct Options {
    /// CPU threads for the local part of the pass.
    pub threads: usize,
    /// `host:port` of each RPC server the layers are split across (empty: all local).
    pub rpc: Vec<String>,
    /// Positions the context holds (the longest prompt plus what follows it).
    pub n_ctx: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self { threads: 2, rpc: Vec::new(), n_ctx: 1024 }
    }
}

pub struct Session {
    // Field order is drop order: the context goes before the model it reads.
    ctx: NonNull<ffi::llama_context>,
    model: NonNull<ffi::llama_model>,
    /// The callback's state; boxed so its address, handed to llama.cpp, never moves.
    capture: Box<Capture>,
    pub n_ctx: usize,
    /// The servers' devices (a null-terminated list), kept alive while the model uses them.
    _devices: Vec<ffi::ggml_backend_dev_t>,
}

// SAFETY: the session is used from one thread at a time (`&mut self` for every call into
// llama.cpp); llama.cpp's model and context are not tied to the thread that made them.
unsafe impl Send for Session {}

impl Drop for Session {
    fn drop(&mut self) {
        // SAFETY: both pointers came from llama.cpp, are freed once, context first.
        unsafe {
            ffi::llama_free(self.ctx.as_ptr());
            ffi::llama_model_free(self.model.as_ptr());
        }
    }
}

impl Session {
    /// Loads `gguf` and creates the context; `qk_permuted` tells the capture to undo the Llama
    /// converter's Q/K interleave.
    pub fn open(gguf: &Path, options: &Options, qk_permuted: bool) -> Result<Self, String> {
        ffi::init();
        let path = CString::new(gguf.as_os_str().as_encoded_bytes()).map_err(|_| "the path holds a NUL byte".to_string())?;
        let mut devices = rpc::devices(&options.rpc)?;
        // SAFETY: default params are plain data.
        let mut mp = unsafe { ffi::llama_model_default_params() };
        // No repacked weight layouts on the local CPU: an RPC server holds weights as stored, and
        // the same bits on both sides need the same kernels.
        mp.use_extra_bufts = false;
        if !devices.is_empty() {
            devices.push(std::ptr::null_mut());
            mp.devices = devices.as_mut_ptr();
            mp.n_gpu_layers = i32::MAX;
        }
        // SAFETY: `path` is NUL-terminated; `devices` (when set) is null-terminated and outlives
        // the model (kept in the session).
        let model = NonNull::new(unsafe { ffi::llama_model_load_from_file(path.as_ptr(), mp) })
            .ok_or_else(|| "llama.cpp could not load it (run with GLASSBOX_LLAMACPP_LOG=1 to see why)".to_string())?;
        let mut capture = Box::new(Capture::new(qk_permuted));
        // SAFETY: default params are plain data.
        let mut cp = unsafe { ffi::llama_context_default_params() };
        let n = options.n_ctx as u32;
        cp.n_ctx = n;
        cp.n_batch = n;
        cp.n_ubatch = n; // one ubatch per pass: each node is seen once, whole
        cp.n_threads = options.threads as i32;
        cp.n_threads_batch = options.threads as i32;
        cp.flash_attn_type = ffi::LLAMA_FLASH_ATTN_TYPE_DISABLED;
        cp.cb_eval = Some(capture::eval_callback);
        cp.cb_eval_user_data = (&mut *capture as *mut Capture).cast();
        cp.no_perf = true;
        // A sliding-window layer's cache keeps every cell: freed cells would be reused out of
        // position order, and the pattern's key axis is read in cell order.
        cp.swa_full = true;
        // SAFETY: `model` is live; the callback's user data is the boxed capture, which the
        // session owns for as long as the context exists.
        let ctx = match NonNull::new(unsafe { ffi::llama_init_from_model(model.as_ptr(), cp) }) {
            Some(ctx) => ctx,
            None => {
                // SAFETY: the model was loaded above and is freed once.
                unsafe { ffi::llama_model_free(model.as_ptr()) };
                return Err("llama.cpp could not create a context for it".to_string());
            }
        };
        Ok(Self { ctx, model, capture, n_ctx: options.n_ctx, _devices: devices })
    }

    /// Runs `ids` at positions `pos0..` (after the cache), reading back the nodes `wants`
    /// selects; logits for every position when `all_logits`, else the last.
    pub fn decode(&mut self, ids: &[u32], pos0: usize, all_logits: bool, capture: &mut Capture) -> Result<(), String> {
        if pos0 + ids.len() > self.n_ctx {
            return Err(format!("{} positions exceed the llama.cpp context of {}", pos0 + ids.len(), self.n_ctx));
        }
        std::mem::swap(&mut *self.capture, capture);
        let status = self.decode_raw(ids, pos0, all_logits);
        std::mem::swap(&mut *self.capture, capture);
        if let Some(why) = capture.failed.take() {
            return Err(why);
        }
        match status {
            0 => Ok(()),
            1 => Err("llama.cpp found no room in its KV cache".to_string()),
            2 => Err("the pass was cancelled while reading a tensor back".to_string()),
            s => Err(format!("llama_decode failed (status {s})")),
        }
    }

    fn decode_raw(&mut self, ids: &[u32], pos0: usize, all_logits: bool) -> i32 {
        let n = ids.len() as i32;
        // SAFETY: the batch is allocated for `n` tokens and one sequence id each; every field
        // is written below before use and the batch is freed once.
        unsafe {
            let batch = ffi::llama_batch_init(n, 0, 1);
            for (i, &id) in ids.iter().enumerate() {
                *batch.token.add(i) = id as i32;
                *batch.pos.add(i) = (pos0 + i) as i32;
                *batch.n_seq_id.add(i) = 1;
                *(*batch.seq_id.add(i)) = 0;
                *batch.logits.add(i) = i8::from(all_logits || i + 1 == ids.len());
            }
            let mut batch = batch;
            batch.n_tokens = n;
            let status = ffi::llama_decode(self.ctx.as_ptr(), batch);
            ffi::llama_batch_free(batch);
            status
        }
    }

    /// Forgets the cached positions from `len` on.
    pub fn truncate(&mut self, len: usize) {
        // SAFETY: the context is live; removing a position range from sequence 0 is always valid.
        unsafe {
            let mem = ffi::llama_get_memory(self.ctx.as_ptr());
            if len == 0 {
                ffi::llama_memory_clear(mem, true);
            } else {
                ffi::llama_memory_seq_rm(mem, 0, len as i32, -1);
            }
        }
    }
}
