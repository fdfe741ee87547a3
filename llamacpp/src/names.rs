//! llama.cpp's graph tensor names (`attn_norm-3`, `kq_soft_max-3`, `result_output`) mapped onto
//! Glassbox's hooks, and what each needs to land in Glassbox's layout. The names are the ones
//! llama.cpp's model builders give their nodes through `cb(cur, "name", il)`; a node named twice
//! (`Qcur` before and after RoPE) is told apart by its op.

use glassbox_engine::program::hooks::{BlockHook, HookKey};

/// Which Glassbox hook a llama.cpp node fills, and how its values are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapped {
    pub key: HookKey,
    pub layout: Layout,
}

/// How a node's values (ggml order: `ne[0]` fastest) become the hook's row-major tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `ne = [width, pos]` is already `[pos, width]` row-major (residual, MLP, logits; heads as
    /// `[pos, heads, d_head]` when `width = heads · d_head`).
    Rows,
    /// Q or K of a Llama GGUF: llama.cpp's converter interleaved each head's two RoPE halves
    /// (`permute` in convert_hf_to_gguf.py), Glassbox keeps the checkpoint's order; undone per head.
    Rows2Halves,
    /// `ne = [k_len_padded, q_pos, heads]`: the pattern, `[head, q_pos, k_pos]` once the key
    /// axis is cut to the keys that exist (llama.cpp pads the cache it attends over).
    Pattern,
}

/// A node name split into its base and layer (`Qcur-12` → `("Qcur", Some(12))`).
pub fn split_name(name: &str) -> (&str, Option<usize>) {
    match name.rsplit_once('-') {
        Some((base, l)) if !base.is_empty() && l.bytes().all(|b| b.is_ascii_digit()) => (base, l.parse().ok()),
        _ => (name, None),
    }
}

/// The hook a node fills, given its name, its op's name (`MUL_MAT`, `ROPE`, …) and whether the
/// model's Q/K rows were interleaved by llama.cpp's Llama converter. `None`: not a hook.
pub fn map(name: &str, op: &str, llama_qk_permuted: bool) -> Option<Mapped> {
    use BlockHook as B;
    let (base, layer) = split_name(name);
    let rows = |key| Some(Mapped { key, layout: Layout::Rows });
    let qk = |key| Some(Mapped { key, layout: if llama_qk_permuted { Layout::Rows2Halves } else { Layout::Rows } });
    let Some(l) = layer else {
        return match base {
            "inp_embd" => rows(HookKey::Embed),
            // Gemma: the embedding times √d, what block 0 reads.
            "inp_scaled" => rows(HookKey::Block(0, B::ResidPre)),
            "result_norm" => rows(HookKey::LnFinalNormalized),
            "result_output" => rows(HookKey::Logits),
            _ => None,
        };
    };
    let block = |h| HookKey::Block(l, h);
    let rope = op == "ROPE";
    match base {
        "attn_norm" => rows(block(B::Ln1Normalized)),
        "Qcur" if rope => qk(block(B::RotQ)),
        "Kcur" if rope => qk(block(B::RotK)),
        "Qcur" => qk(block(B::Q)),
        "Kcur" => qk(block(B::K)),
        "Vcur" => rows(block(B::V)),
        "Qcur_normed" => rows(block(B::QNormed)),
        "Kcur_normed" => rows(block(B::KNormed)),
        "kq_soft_max" => Some(Mapped { key: block(B::Pattern), layout: Layout::Pattern }),
        "kqv_out" => rows(block(B::Z)),
        "attn_out" => rows(block(B::AttnOut)),
        "attn_post_norm" => rows(block(B::Ln1PostNormalized)),
        "ffn_inp" | "sa_out" => rows(block(B::ResidMid)),
        "ffn_norm" => rows(block(B::Ln2Normalized)),
        "ffn_gate" => rows(block(B::MlpPre)),
        "ffn_up" => rows(block(B::MlpPreLinear)),
        "ffn_swiglu" | "ffn_geglu" | "ffn_gelu" | "ffn_silu" => rows(block(B::MlpPost)),
        "ffn_out" => rows(block(B::MlpOut)),
        "ffn_post_norm" => rows(block(B::Ln2PostNormalized)),
        "l_out" => rows(block(B::ResidPost)),
        _ => None,
    }
}

/// Hooks Glassbox records that llama.cpp's graph has no node for (or fuses away), with why:
/// the CLI prints this, and the views show them as missing.
pub const NOT_COVERED: &[(&str, &str)] = &[
    ("ln*.hook_scale", "llama.cpp's RMSNorm keeps no per-position scale"),
    ("attn.hook_raw_scores", "llama.cpp's `kq` is unscaled: the scale is fused into its softmax"),
    ("attn.hook_attn_scores", "the mask is fused into llama.cpp's softmax"),
    ("hook_resid_pre", "taken from the previous block's `l_out` (block 0: `inp_embd`)"),
    ("interventions", "ablations and edits are not applied on the llama.cpp engine yet"),
];

/// The coverage note, one line per hook kind llama.cpp does not give.
pub fn coverage() -> String {
    let lines: Vec<String> = NOT_COVERED.iter().map(|(h, why)| format!("  {h}: {why}")).collect();
    format!("llama.cpp engine: hooks not captured or derived:\n{}", lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_into_base_and_layer() {
        assert_eq!(split_name("kq_soft_max-12"), ("kq_soft_max", Some(12)));
        assert_eq!(split_name("result_norm"), ("result_norm", None));
        assert_eq!(split_name("Qcur-0 (reshaped)"), ("Qcur-0 (reshaped)", None));
    }

    #[test]
    fn qcur_before_and_after_rope_are_two_hooks() {
        assert_eq!(map("Qcur-3", "MUL_MAT", true).map(|m| m.key), Some(HookKey::Block(3, BlockHook::Q)));
        assert_eq!(map("Qcur-3", "ROPE", true), Some(Mapped { key: HookKey::Block(3, BlockHook::RotQ), layout: Layout::Rows2Halves }));
        assert_eq!(map("Kcur-3", "ROPE", false).map(|m| m.layout), Some(Layout::Rows));
        assert_eq!(map("kq-3", "MUL_MAT", true), None);
    }
}
