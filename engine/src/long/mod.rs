//! Long prompts inside a memory budget: the plan ([`budget`]), a pass run in chunks that keeps
//! the residual stream and per-position summaries ([`overview`]), and one block's detail
//! computed again for a window of rows ([`recompute`]).

pub mod budget;
pub mod overview;
pub mod recompute;
