#![allow(clippy::unwrap_used)]

use std::path::Path;

use super::*;
use crate::LlamaConfig;

fn arch(rel: &str) -> Arch {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
    LlamaConfig::from_file(&dir.join(rel)).unwrap().arch()
}

fn names(side: impl Iterator<Item = Option<LayerOp>>) -> Vec<&'static str> {
    side.flatten().map(LayerOp::name).collect()
}

/// The rows written out as `name`, `+b` (B only), `-a` (A only), `a>b` (changed).
fn render(rows: &[Aligned]) -> Vec<String> {
    rows.iter()
        .map(|r| match *r {
            Aligned::Same(op) => op.name().to_string(),
            Aligned::OnlyA(op) => format!("-{}", op.name()),
            Aligned::OnlyB(op) => format!("+{}", op.name()),
            Aligned::Changed(x, y) => format!("{}>{}", x.name(), y.name()),
        })
        .collect()
}

#[test]
fn align_llama_against_gemma3() {
    let rows = align_blocks(&arch("configs/smollm2-135m.json"), &arch("configs/gemma-3-270m.json"));
    let want = "ln1 q k v +qk_norm rope scores mask softmax z o_proj +ln1_post attn_add ln2 gate up silu_mul>gelu_mul down +ln2_post mlp_add";
    assert_eq!(render(&rows).join(" "), want);
    assert_eq!(rows.iter().filter(|r| r.is_difference()).count(), 4);
}

#[test]
fn align_keeps_each_side_in_program_order() {
    let (a, b) = (arch("configs/smollm2-135m.json"), arch("configs/gemma-3-270m.json"));
    let rows = align_blocks(&a, &b);
    let ops = |x: &Arch| LayerOp::block(x).into_iter().map(LayerOp::name).collect::<Vec<_>>();
    assert_eq!(names(rows.iter().map(|r| r.a())), ops(&a));
    assert_eq!(names(rows.iter().map(|r| r.b())), ops(&b));
    // Swapped, the marks swap.
    let back = align_blocks(&b, &a);
    assert!(back.contains(&Aligned::OnlyA(LayerOp::QkNorm)));
    assert!(back.contains(&Aligned::Changed(LayerOp::GeluMul, LayerOp::SiluMul)));
}

#[test]
fn align_same_architecture_has_no_differences() {
    let a = arch("configs/llama-3.1-8b.json");
    let rows = align_blocks(&a, &arch("configs/smollm2-135m.json"));
    assert!(rows.iter().all(|r| !r.is_difference()), "{:?}", render(&rows));
    assert_eq!(rows.len(), LayerOp::block(&a).len());
}

#[test]
fn align_pairs_ops_by_role_llama_against_gpt2() {
    // GPT-2: learned positions (no rope), an ungated MLP: `mlp_in act` for `gate up silu_mul`.
    let rows = align_blocks(&arch("configs/smollm2-135m.json"), &arch("tiny-gpt2/config.json"));
    let r = render(&rows).join(" ");
    assert!(r.contains("-rope"), "{r}");
    assert!(r.contains("gate>mlp_in -up silu_mul>act down"), "{r}");
}

#[test]
fn variants_mark_what_the_op_names_do_not() {
    let (qwen3, olmo2) = (arch("configs/qwen3-0.6b.json"), arch("configs/olmo-2-0425-1b.json"));
    let rows = align_blocks(&qwen3, &olmo2);
    let r = render(&rows).join(" ");
    assert!(r.contains("-ln1") && r.contains("+ln1_post") && r.contains("+ln2_post"), "{r}");
    let qk = rows.iter().copied().find(|r| *r == Aligned::Same(LayerOp::QkNorm)).unwrap();
    assert_eq!(variant_difference(&qwen3, &olmo2, qk), (vec![Variant::QkNormPerHead], vec![Variant::QkNormWhole]));
    let post = rows.iter().copied().find(|r| r.b() == Some(LayerOp::AttnPostNorm)).unwrap();
    assert_eq!(variant_difference(&qwen3, &olmo2, post).1, vec![Variant::NormAfterOnly]);

    let (phi3, llama, qwen2) = (arch("configs/phi-3-mini-4k.json"), arch("configs/smollm2-135m.json"), arch("configs/qwen2.5-0.5b.json"));
    for op in [LayerOp::Q, LayerOp::K, LayerOp::V, LayerOp::Gate, LayerOp::Up] {
        assert_eq!(variant_difference(&phi3, &llama, Aligned::Same(op)), (vec![Variant::Fused], vec![]));
    }
    assert_eq!(variant_difference(&phi3, &llama, Aligned::Same(LayerOp::Down)), (vec![], vec![]));
    assert_eq!(variant_difference(&llama, &qwen2, Aligned::Same(LayerOp::K)), (vec![], vec![Variant::Bias]));
    assert_eq!(variant_difference(&llama, &qwen2, Aligned::Same(LayerOp::OProj)), (vec![], vec![]));
}
