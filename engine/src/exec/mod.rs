//! Execution and the trace: the [`executor::Executor`] interface, the one pass driver both
//! backends share ([`driver`]), the CPU reference ([`cpu`]) and the GPU ([`gpu`]) backends, and
//! what a pass leaves behind ([`trace::Trace`], [`tensor::Tensor`]). Interventions
//! ([`intervene`]) are applied inside a pass; sampling picks the next token.

pub mod backend;
pub mod cpu;
pub mod driver;
pub mod executor;
pub mod gpu;
pub mod intervene;
pub mod reference_check;
pub mod sampling;
pub mod tensor;
pub mod trace;
