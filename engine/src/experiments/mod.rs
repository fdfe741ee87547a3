//! Experiments and analysis: change something and measure the effect, or read model math off
//! a trace. Each builds on the
//! executors' interventions and traces; the GUI and the CLI only call these.
//!
//! - [`compare`]: run B beside run A, hook by hook (divergence, first op apart, top-k).
//! - [`quantize`]: the weights rounded through bf16, int8 or 4-bit blocks.
//! - [`patching`]: activation patching, clean → corrupt, per block and position (or head).
//! - [`attribution`]: direct logit attribution per head and MLP.
//! - [`head_catalog`]: previous-token, first-token, induction and duplicate-token scores.
//! - [`analysis`]: residual norms, write norms, top-k, logit lens, next-token loss.
//! - [`npy`]: hooks as `.npy` / `.npz` for notebooks.

pub mod analysis;
pub mod attribution;
pub mod compare;
pub mod head_catalog;
pub mod npy;
pub mod patching;
pub mod quantize;
