//! The article's demonstrations that are not a forward pass of their own: ReLU vs SiLU
//! ([`activations`]), LayerNorm vs RMSNorm ([`norms`]), data augmentation ([`augment`]), and
//! its four uses as tasks on the instruct model ([`tasks`]).

pub mod activations;
pub mod augment;
pub mod norms;
pub mod tasks;
