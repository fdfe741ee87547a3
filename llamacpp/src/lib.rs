//! Glassbox on llama.cpp: an [`Executor`](glassbox_engine::exec::executor::Executor) that runs a
//! GGUF through llama.cpp, locally or with its layers split across `glassbox rpc-server`s (ggml's
//! RPC backend), and records llama.cpp's graph tensors under Glassbox's hook names. The engine
//! stays free of C++: this crate is the app's optional `llamacpp` feature.

mod capture;
mod executor;
mod ffi;
mod layout;
pub mod names;
pub mod rpc;
mod session;

pub use executor::LlamaCppExecutor;
pub use names::coverage;
pub use session::Options;
