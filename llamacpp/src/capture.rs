//! The scheduler's evaluation callback (`cb_eval`): llama.cpp asks, node by node, whether we
//! want to see it (`ask = true`), then hands over each node we said yes to once it is computed,
//! on whichever device (a `glassbox rpc-server` included) computed it. We read those back as f32.
#![allow(unsafe_code)]

use std::ffi::{CStr, c_void};

use glassbox_engine::program::hooks::HookKey;

use crate::ffi;
use crate::names::{self, Mapped};

/// One node read back: where it goes, its ggml shape (`ne[0]` fastest) and its values.
#[derive(Debug, Clone)]
pub struct Node {
    pub mapped: Mapped,
    pub ne: [usize; 4],
    pub values: Vec<f32>,
}

/// What the callback of the pass in progress wants and what it has read back.
pub struct Capture {
    /// Whether a hook is wanted in this pass.
    pub wants: Box<dyn Fn(HookKey) -> bool + Send>,
    pub qk_permuted: bool,
    /// `GLASSBOX_LLAMACPP_NAMES`: print every node's name, op and shape once as it is asked.
    pub print_names: bool,
    pub nodes: Vec<Node>,
    /// Bytes read back from the devices in this pass.
    pub bytes: usize,
    /// A read that failed (a node of a type we cannot read), for the pass's error.
    pub failed: Option<String>,
}

impl Capture {
    pub fn new(qk_permuted: bool) -> Self {
        Self {
            wants: Box::new(|_| false),
            qk_permuted,
            print_names: std::env::var_os("GLASSBOX_LLAMACPP_NAMES").is_some(),
            nodes: Vec::new(),
            bytes: 0,
            failed: None,
        }
    }
}

/// The node's name and op, as strings. The token embedding's row gather (and Gemma's output
/// projection) has no name of its own in this llama.cpp: it is named after the weight it reads.
///
/// SAFETY: `t` must point to a live ggml tensor (the scheduler's node during the callback).
unsafe fn describe(t: *const ffi::ggml_tensor) -> (String, String) {
    // SAFETY: the caller guarantees `t` is live; `name` is a NUL-terminated array inside it (and
    // inside its source, when it has one) and `ggml_op_name` returns a static string.
    unsafe {
        let name_of = |t: *const ffi::ggml_tensor| CStr::from_ptr((*t).name.as_ptr()).to_string_lossy().into_owned();
        let op = CStr::from_ptr(ffi::ggml_op_name((*t).op)).to_string_lossy().into_owned();
        let src = (*t).src[0];
        if op == "GET_ROWS" && !src.is_null() && name_of(src) == "token_embd.weight" {
            return ("inp_embd".to_string(), op);
        }
        // Gemma's attention output projection is unnamed too: named after its weight.
        if op == "MUL_MAT" && !src.is_null()
            && let Some(layer) = name_of(src).strip_prefix("blk.").and_then(|r| r.strip_suffix(".attn_output.weight"))
        {
            return (format!("attn_out-{layer}"), op);
        }
        (name_of(t), op)
    }
}

/// The `cb_eval` llama.cpp calls; `user` is the `Capture` the context was created with.
pub unsafe extern "C" fn eval_callback(t: *mut ffi::ggml_tensor, ask: bool, user: *mut c_void) -> bool {
    if t.is_null() || user.is_null() {
        return true;
    }
    // Unwinding into C is undefined: a panic here cancels the pass instead.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: `user` is the `Capture` the session owns, alive and not otherwise borrowed
        // while `llama_decode` runs (the only time this is called); `t` is the live node.
        unsafe { on_node(&mut *(user as *mut Capture), t, ask) }
    }))
    .unwrap_or(false)
}

/// SAFETY: `t` must be the scheduler's live node; when `ask` is false its data is computed.
unsafe fn on_node(cap: &mut Capture, t: *mut ffi::ggml_tensor, ask: bool) -> bool {
    // SAFETY: forwarded from the caller.
    let (name, op) = unsafe { describe(t) };
    // SAFETY: `t` is live; `ne` is a plain array field.
    let ne = unsafe { (*t).ne }.map(|n| n.max(0) as usize);
    let mapped = names::map(&name, &op, cap.qk_permuted).filter(|m| (cap.wants)(m.key));
    if ask {
        if cap.print_names {
            eprintln!("glassbox: llama.cpp node {name:<24} {op:<12} ne {ne:?}{}", mapped.map_or(String::new(), |m| format!(" → {}", m.key)));
        }
        // SAFETY: `t` is live.
        let readable = unsafe { (*t).type_ == ffi::GGML_TYPE_F32 && ffi::ggml_is_contiguous(t) };
        return mapped.is_some() && readable;
    }
    let Some(mapped) = mapped else { return true };
    let count: usize = ne.iter().product();
    let mut values = vec![0f32; count];
    // SAFETY: `t` is a computed, contiguous f32 tensor of `count` elements (checked when asked);
    // `values` holds exactly `count · 4` bytes. The backend copies from its device (an RPC
    // server over the socket) into our buffer.
    unsafe { ffi::ggml_backend_tensor_get(t, values.as_mut_ptr().cast(), 0, count * 4) };
    cap.bytes += count * 4;
    // The embedding's gather appears twice (llama.cpp's mixed-batch branch, not the one taken,
    // comes second): the first is the one computed.
    if mapped.key == HookKey::Embed && cap.nodes.iter().any(|n| n.mapped.key == HookKey::Embed) {
        return true;
    }
    // A node named twice with the same op (a reshape after its product) is the same values:
    // the later one wins.
    cap.nodes.retain(|n| n.mapped.key != mapped.key);
    cap.nodes.push(Node { mapped, ne, values });
    true
}
