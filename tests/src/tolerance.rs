//! The bounds tests hold Glassbox's numbers to. `TOLERANCES.md` at the repository root is the
//! table with the reasons and the measured values; `tests/tolerances.rs` keeps the two equal.

pub const FIXTURE_HOOK_REL: f64 = 1e-4;
pub const SMOLLM2_LOGITS_ABS: f64 = 2e-3;
pub const INTERVENTION_LOGITS_ABS: f64 = 2e-3;
pub const GEMMA_LOGITS_ABS: f64 = 4e-3;
pub const GEMMA_RESID_REL: f64 = 3e-3;
pub const GEMMA_PATTERN_ABS: f64 = 7e-4;

pub const KERNEL_LINEAR: f64 = 5e-12;
pub const KERNEL_LINEAR_F16_WEIGHTS: f64 = 2e-12;
pub const KERNEL_F16_ROUNDING: f64 = 5e-7;
pub const KERNEL_RMSNORM: f64 = 6e-13;
pub const KERNEL_ROPE: f64 = 1e-13;
pub const KERNEL_SCORES: f64 = 2e-13;
pub const KERNEL_SOFTMAX: f64 = 2e-13;
pub const KERNEL_ATTEND: f64 = 1e-13;
pub const KERNEL_SILU_MUL: f64 = 2e-15;
pub const KERNEL_PROBS: f64 = 4e-13;
pub const KERNEL_LAYERNORM: f64 = 8e-13;
pub const KERNEL_QK_NORM: f64 = 2e-13;
pub const KERNEL_GELU: f64 = 3e-14;
pub const EXACT: f64 = 0.0;

pub const PASS_HOOK: f64 = 5e-10;
pub const ROUNDED_PASS_HOOK: f64 = 1e-4;
pub const ROUNDED_PROBS: f64 = 3e-3;
pub const SMOLLM2_PASS_HOOK: f64 = 1e-9;
pub const GPU_LOGITS_ABS: f64 = 1.5e-3;
pub const GPU_VS_REFERENCE_ABS: f64 = 1e-2;

pub const NATIVE_PASS_HOOK: f64 = 1e-9;

pub const F16_TOP1_AGREEMENT: f64 = 0.99;
pub const F16_MEAN_KL: f64 = 1e-3;

/// Every constant by name, for the check against `TOLERANCES.md`.
pub const ALL: &[(&str, f64)] = &[
    ("FIXTURE_HOOK_REL", FIXTURE_HOOK_REL),
    ("SMOLLM2_LOGITS_ABS", SMOLLM2_LOGITS_ABS),
    ("INTERVENTION_LOGITS_ABS", INTERVENTION_LOGITS_ABS),
    ("GEMMA_LOGITS_ABS", GEMMA_LOGITS_ABS),
    ("GEMMA_RESID_REL", GEMMA_RESID_REL),
    ("GEMMA_PATTERN_ABS", GEMMA_PATTERN_ABS),
    ("KERNEL_LINEAR", KERNEL_LINEAR),
    ("KERNEL_LINEAR_F16_WEIGHTS", KERNEL_LINEAR_F16_WEIGHTS),
    ("KERNEL_F16_ROUNDING", KERNEL_F16_ROUNDING),
    ("KERNEL_RMSNORM", KERNEL_RMSNORM),
    ("KERNEL_ROPE", KERNEL_ROPE),
    ("KERNEL_SCORES", KERNEL_SCORES),
    ("KERNEL_SOFTMAX", KERNEL_SOFTMAX),
    ("KERNEL_ATTEND", KERNEL_ATTEND),
    ("KERNEL_SILU_MUL", KERNEL_SILU_MUL),
    ("KERNEL_PROBS", KERNEL_PROBS),
    ("KERNEL_LAYERNORM", KERNEL_LAYERNORM),
    ("KERNEL_QK_NORM", KERNEL_QK_NORM),
    ("KERNEL_GELU", KERNEL_GELU),
    ("EXACT", EXACT),
    ("PASS_HOOK", PASS_HOOK),
    ("ROUNDED_PASS_HOOK", ROUNDED_PASS_HOOK),
    ("ROUNDED_PROBS", ROUNDED_PROBS),
    ("SMOLLM2_PASS_HOOK", SMOLLM2_PASS_HOOK),
    ("GPU_LOGITS_ABS", GPU_LOGITS_ABS),
    ("GPU_VS_REFERENCE_ABS", GPU_VS_REFERENCE_ABS),
    ("NATIVE_PASS_HOOK", NATIVE_PASS_HOOK),
    ("F16_TOP1_AGREEMENT", F16_TOP1_AGREEMENT),
    ("F16_MEAN_KL", F16_MEAN_KL),
];
