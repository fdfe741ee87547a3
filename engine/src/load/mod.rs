//! Loading a model: `config.json` → [`arch::Arch`] (the family as data), the checkpoint's
//! tensors checked and mapped onto one layout ([`families`], [`model::Model`]), the tokenizer
//! and chat template; GGUF files converted to that folder form ([`gguf`]); the known models
//! fetched from the package index and cached ([`fetch`]); models already on this computer
//! found ([`discover`]).

pub mod arch;
pub mod arch_stats;
pub mod arch_variants;
pub mod chat_template;
pub mod config;
pub mod discover;
pub mod families;
pub mod fetch;
pub mod gguf;
pub mod guard;
pub mod heap;
pub mod layout;
pub mod layout_named;
pub mod load_check;
pub mod longrope;
pub mod matrix;
pub mod model;
pub mod safetensors_check;
pub mod tokenizer;
pub mod tokenizer_check;
pub mod weights;
