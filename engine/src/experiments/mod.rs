//! Experiments on a model: change something and measure the effect. Each builds on the
//! executors' interventions and traces; the GUI and the CLI only call these.
//!
//! - [`compare`]: run B beside run A, hook by hook (divergence, first op apart, top-k).
//! - [`quantize`]: the weights rounded through bf16, int8 or 4-bit blocks.
//! - [`patching`]: activation patching, clean → corrupt, per block and position (or head).
//! - [`attribution`]: direct logit attribution per head and MLP.
//! - [`head_catalog`]: previous-token, first-token, induction and duplicate-token scores.
//! - [`npy`]: hooks as `.npy` / `.npz` for notebooks.

pub mod attribution;
pub mod compare;
pub mod head_catalog;
pub mod npy;
pub mod patching;
pub mod quantize;
