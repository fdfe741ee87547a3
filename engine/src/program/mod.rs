//! The op program: what a forward pass does, as data. [`op`] names the ops (every family's
//! union, in program order), [`op_table`] says what each reads and which hooks it produces,
//! [`step::Program`] is one model's sequence of them generated from its `Arch`, [`hooks`] the
//! TransformerLens names, [`graph`] the shape of every hook for a given input.

pub mod align;
pub mod graph;
pub mod hooks;
pub mod op;
pub mod op_table;
pub mod step;
