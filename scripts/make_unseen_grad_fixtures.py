#!/usr/bin/env python3
"""Issue 20: unseen reference checkpoints with torch gradients, one per family.

`glassbox grad` must match torch "on the fixtures and on unseen checkpoints of each family".
The `tests/fixtures/tiny-*` folders are the fixtures; this script makes NEW random checkpoints
(other sizes, seeds, head layouts and options) of every family, so a Rust test can check
Glassbox's gradients against torch autograd on models no fixture reference was made for,
without torch at test time.

For each family it writes `tests/fixtures/unseen/<family>/`:
  config.json, model.safetensors (and generation_config.json for causal models), as
      `save_pretrained(dir, safe_serialization=True)` writes them;
  golden.safetensors: `hook_logits` [T, vocab], `input_ids` (int64) [T];
  grad.safetensors: in the layout of `tests/fixtures/README.md` ("Gradients and AdamW",
      "Other architectures"): `loss` [1], `input_ids` [T], BERT `labels` [T],
      `grad.<hf parameter name>`, `grad.hook_logits` [T, vocab],
      `grad.blocks.L.hook_resid_pre` [T, d], `grad.blocks.L.attn.hook_pattern` [heads, T, T].

The gradients are taken on the model as reloaded from the saved folder (so they belong to the
bytes on disk), and checked against the same model in float64.

    /work/peers/venv/bin/python scripts/make_unseen_grad_fixtures.py [--out tests/fixtures/unseen]
        [--only llama,gpt2,...]
"""
import argparse
import copy
import json
import os
import shutil
import sys

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

torch.set_num_threads(2)
torch.use_deterministic_algorithms(True)

NONE_IDS = dict(bos_token_id=None, eos_token_id=None, pad_token_id=None)
# f32 gradients must sit well inside the 1e-4 relative bound the Rust test uses: the f64 rerun
# of the same checkpoint shows how far f32 rounding alone moves them.
F64_REL_BOUND = 2e-5
# Gradients that are zero in exact arithmetic: a key bias adds q·b to every score of a query's
# row, which softmax ignores (no RoPE to make it position dependent). torch stores rounding
# noise there; a test must compare these with an absolute floor, not relative to their max.
EXACT_ZERO = ("attention.self.key.bias",)
EXACT_ZERO_ABS = 1e-6


# ---------------------------------------------------------------------------------------------
# Weights


def randomise(model, seed, gemma=False, d_model=None):
    """The fixtures' scheme: linear ~ N(0, (0.2·√(64/fan_in))²), biases N(0, 0.02²), embeddings
    N(0, 0.2²) (Gemma (0.2/√d)², as it multiplies rows by √d), norm weights 1 + N(0, 0.01²)
    (Gemma w ~ N(0, 0.01²), it uses 1 + w), norm biases N(0, 0.01²)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            n = torch.randn(p.shape, generator=g, dtype=torch.float32)
            low = name.lower()
            if "norm" in low or ".ln_" in low:
                if name.endswith("bias"):
                    p.copy_(0.01 * n)
                else:
                    p.copy_((0.0 if gemma else 1.0) + 0.01 * n)
            elif "embed" in low or low.endswith(("wte.weight", "wpe.weight")):
                std = 0.2 / d_model ** 0.5 if gemma else 0.2
                p.copy_(std * n)
            elif p.ndim == 1:
                p.copy_(0.02 * n)
            else:
                # GPT-2's Conv1D keeps [in, out]; nn.Linear keeps [out, in].
                conv1d = any(k in low for k in ("c_attn", "c_proj", "c_fc"))
                fan_in = p.shape[0] if conv1d else p.shape[1]
                p.copy_(0.2 * (64.0 / fan_in) ** 0.5 * n)


def ids_of(seed, vocab, n, avoid=()):
    g = np.random.default_rng(seed)
    ids = []
    while len(ids) < n:
        t = int(g.integers(0, vocab))
        if t not in avoid:
            ids.append(t)
    return ids


# ---------------------------------------------------------------------------------------------
# Families: each returns (model, input_ids, labels or None, note)


def family_llama():
    cfg = transformers.LlamaConfig(
        vocab_size=61, hidden_size=36, intermediate_size=56, num_hidden_layers=2,
        num_attention_heads=6, num_key_value_heads=2, head_dim=6, hidden_act="silu",
        max_position_embeddings=64, rms_norm_eps=1e-5, tie_word_embeddings=False,
        rope_parameters={"rope_type": "default", "rope_theta": 500.0},
        attention_bias=False, mlp_bias=False, attention_dropout=0.0, **NONE_IDS)
    model = transformers.LlamaForCausalLM(cfg)
    randomise(model, 20101)
    return model, ids_of(2011, 61, 10), None, "untied, GQA 6/2 (group 3), head_dim 6, θ 500"


def family_gpt2():
    cfg = transformers.GPT2Config(
        vocab_size=67, n_embd=32, n_layer=2, n_head=4, n_inner=80, n_positions=32,
        activation_function="gelu_new", layer_norm_epsilon=1e-5, resid_pdrop=0.0,
        embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=None, eos_token_id=None)
    model = transformers.GPT2LMHeadModel(cfg)
    randomise(model, 20202)
    return model, ids_of(2022, 67, 11), None, "gelu_new, tied, 32 learned positions"


def family_gpt2_relu():
    cfg = transformers.GPT2Config(
        vocab_size=53, n_embd=24, n_layer=2, n_head=3, n_inner=64, n_positions=24,
        activation_function="relu", layer_norm_epsilon=1e-5, resid_pdrop=0.0,
        embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=None, eos_token_id=None)
    model = transformers.GPT2LMHeadModel(cfg)
    randomise(model, 20303)
    return model, ids_of(2033, 53, 9), None, "ReLU MLP, tied, 24 learned positions"


BERT_MASK_ID = 4
BERT_MASKED = (1, 5, 8)


def family_bert_mlm():
    cfg = transformers.BertConfig(
        vocab_size=71, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=72, hidden_act="gelu", max_position_embeddings=24,
        type_vocab_size=2, layer_norm_eps=1e-12, hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0, pad_token_id=0, tie_word_embeddings=True)
    model = transformers.BertForMaskedLM(cfg)
    randomise(model, 20404)
    # Neither the pad id (torch drops a padding_idx row's lookup gradient) nor the mask id
    # except where masked.
    original = ids_of(2044, 71, 11, avoid=(0, BERT_MASK_ID))
    ids = list(original)
    labels = [-100] * len(ids)
    for pos in BERT_MASKED:
        labels[pos] = original[pos]
        ids[pos] = BERT_MASK_ID
    return model, ids, labels, f"mask id {BERT_MASK_ID} at {list(BERT_MASKED)}, gelu (erf)"


def family_gemma3():
    cfg = transformers.Gemma3TextConfig(
        vocab_size=59, hidden_size=32, intermediate_size=48, num_hidden_layers=3,
        num_attention_heads=4, num_key_value_heads=2, head_dim=8,
        hidden_activation="gelu_pytorch_tanh", max_position_embeddings=64, rms_norm_eps=1e-6,
        query_pre_attn_scalar=24, sliding_window=3,
        layer_types=["sliding_attention", "sliding_attention", "full_attention"],
        rope_parameters={"sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
                         "full_attention": {"rope_type": "default", "rope_theta": 1000000.0}},
        attention_dropout=0.0, tie_word_embeddings=True, **NONE_IDS)
    model = transformers.Gemma3ForCausalLM(cfg)
    randomise(model, 20505, gemma=True, d_model=32)
    return (model, ids_of(2055, 59, 10), None,
            "sliding/sliding/full, window 3, query_pre_attn_scalar 24 ≠ head_dim 8, GQA 4/2")


def family_qwen2():
    cfg = transformers.Qwen2Config(
        vocab_size=73, hidden_size=30, intermediate_size=56, num_hidden_layers=2,
        num_attention_heads=5, num_key_value_heads=1, hidden_act="silu",
        max_position_embeddings=64, rms_norm_eps=1e-6, tie_word_embeddings=False,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
        use_sliding_window=False, attention_dropout=0.0, **NONE_IDS)
    model = transformers.Qwen2ForCausalLM(cfg)
    randomise(model, 20606)
    return model, ids_of(2066, 73, 10), None, "q/k/v biases, MQA 5/1, untied, θ 1e6"


def family_qwen3():
    cfg = transformers.Qwen3Config(
        vocab_size=79, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=12, hidden_act="silu",
        max_position_embeddings=64, rms_norm_eps=1e-6, tie_word_embeddings=True,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
        use_sliding_window=False, attention_bias=False, attention_dropout=0.0, **NONE_IDS)
    model = transformers.Qwen3ForCausalLM(cfg)
    randomise(model, 20707)
    return (model, ids_of(2077, 79, 11), None,
            "QK-norm per head, heads·head_dim 48 ≠ d_model 32, tied")


def family_olmo2():
    cfg = transformers.Olmo2Config(
        vocab_size=57, hidden_size=36, intermediate_size=48, num_hidden_layers=2,
        num_attention_heads=6, num_key_value_heads=3, hidden_act="silu",
        max_position_embeddings=64, rms_norm_eps=1e-6, tie_word_embeddings=False,
        rope_parameters={"rope_type": "default", "rope_theta": 500000.0},
        attention_bias=False, attention_dropout=0.0, **NONE_IDS)
    model = transformers.Olmo2ForCausalLM(cfg)
    randomise(model, 20808)
    return (model, ids_of(2088, 57, 9), None,
            "post-sublayer norms, QK-norm over all heads, GQA 6/3, untied, θ 5e5")


def family_phi3():
    cfg = transformers.Phi3Config(
        vocab_size=63, hidden_size=32, intermediate_size=56, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, hidden_act="silu",
        max_position_embeddings=64, original_max_position_embeddings=64, rms_norm_eps=1e-5,
        sliding_window=None, tie_word_embeddings=False, resid_pdrop=0.0, embd_pdrop=0.0,
        attention_dropout=0.0, **NONE_IDS)
    model = transformers.Phi3ForCausalLM(cfg)
    randomise(model, 20909)
    return (model, ids_of(2099, 63, 10), None,
            "fused qkv_proj (GQA 4/2) and gate_up_proj, untied")


FAMILIES = {
    "llama": family_llama,
    "gpt2": family_gpt2,
    "gpt2-relu": family_gpt2_relu,
    "bert-mlm": family_bert_mlm,
    "gemma3": family_gemma3,
    "qwen2": family_qwen2,
    "qwen3": family_qwen3,
    "olmo2": family_olmo2,
    "phi3": family_phi3,
}


# ---------------------------------------------------------------------------------------------
# Gradients


def decoder_layers(model):
    base = getattr(model, model.base_model_prefix)
    if hasattr(base, "layers"):
        return base.layers
    if hasattr(base, "h"):
        return base.h
    return base.encoder.layer


def run_with_grads(model, ids, labels):
    """Forward + backward; returns loss, logits, parameter grads and hook grads. Each layer's
    input is taken by a pre-hook (the tensor the layer really consumes) and checked equal to
    HF's hidden_states[L]."""
    layers = decoder_layers(model)
    taken = {}
    handles = []

    def pre_hook(l):
        def hook(_m, args, kwargs):
            x = args[0] if args else kwargs["hidden_states"]
            x.retain_grad()
            taken[l] = x
        return hook

    for l, layer in enumerate(layers):
        handles.append(layer.register_forward_pre_hook(pre_hook(l), with_kwargs=True))
    model.zero_grad(set_to_none=True)
    x = torch.tensor([ids])
    kw = dict(output_attentions=True, output_hidden_states=True)
    if labels is None:
        out = model(x, labels=x, use_cache=False, **kw)
    else:
        out = model(x, labels=torch.tensor([labels]), **kw)
    for h in handles:
        h.remove()
    out.logits.retain_grad()
    for a in out.attentions:
        a.retain_grad()
    out.loss.backward()

    hooks = {"hook_logits": out.logits.grad[0]}
    for l in range(len(layers)):
        assert torch.equal(taken[l].detach(), out.hidden_states[l].detach()), \
            f"layer {l} input ≠ hidden_states[{l}]"
        assert taken[l].grad is not None, f"no gradient reached layer {l}'s input"
        hooks[f"blocks.{l}.hook_resid_pre"] = taken[l].grad[0]
        g = out.attentions[l].grad
        assert g is not None, f"no gradient reached layer {l}'s attention pattern"
        hooks[f"blocks.{l}.attn.hook_pattern"] = g[0]
    # Copies: the f64 rerun converts the model, and with it any grad tensor still attached.
    params = {n: None if p.grad is None else p.grad.detach().clone()
              for n, p in model.named_parameters()}
    hooks = {k: g.detach().clone() for k, g in hooks.items()}
    return out.loss.detach(), out.logits.detach()[0], params, hooks


def zero_rows(g):
    """Indices of all-zero rows of a matrix gradient (empty for vectors)."""
    if g.ndim != 2:
        return []
    return [i for i in range(g.shape[0]) if not torch.any(g[i] != 0)]


def legit_zero_rows(name, rows, n_rows, ids, T, untied_embed, causal):
    """Whether a gradient's all-zero rows are expected, and why."""
    if name.endswith(("wpe.weight", "position_embeddings.weight")):
        # Causal: position T-1 feeds only the unscored last position.
        first = T - 1 if causal else T
        return rows == list(range(first, n_rows)), f"positions >= {first} reach no scored output"
    if name.endswith("token_type_embeddings.weight"):
        return rows == [1], "token type 1; every input is type 0"
    if name.endswith(("embed_tokens.weight", "wte.weight", "word_embeddings.weight")):
        # Causal: the last token feeds only the last position, which is not scored.
        seen = ids[:-1] if causal else ids
        unused = [i for i in range(n_rows) if i not in seen]
        return untied_embed and rows == unused, "ids not among the scored inputs; untied head"
    return False, ""


def check(family, model, ids, labels, loss, logits, params, hooks):
    cfg = model.config
    T, V = len(ids), cfg.vocab_size
    d = cfg.hidden_size
    n_layers = cfg.num_hidden_layers
    n_heads = cfg.num_attention_heads
    assert torch.isfinite(loss).all(), f"{family}: loss not finite"
    assert logits.shape == (T, V)
    assert hooks["hook_logits"].shape == (T, V)
    for l in range(n_layers):
        assert hooks[f"blocks.{l}.hook_resid_pre"].shape == (T, d)
        assert hooks[f"blocks.{l}.attn.hook_pattern"].shape == (n_heads, T, T)
    for k, g in hooks.items():
        assert torch.isfinite(g).all(), f"{family}: {k} grad not finite"
        assert torch.any(g != 0), f"{family}: {k} grad all zero"
    untied = not getattr(cfg, "tie_word_embeddings", True)
    notes = []
    for name, g in params.items():
        assert g is not None, f"{family}: {name} has no gradient"
        assert torch.isfinite(g).all(), f"{family}: {name} grad not finite"
        assert torch.any(g != 0), f"{family}: {name} grad all zero"
        if name.endswith(EXACT_ZERO):
            notes.append(f"{name}: zero in exact arithmetic; torch's f32 value is noise "
                         f"(max {g.abs().max().item():.1e})")
            continue
        rows = zero_rows(g)
        if not rows:
            continue
        ok, why = legit_zero_rows(name, rows, g.shape[0], ids, T, untied, labels is None)
        if ok:
            notes.append(f"{name}: {len(rows)} zero rows ({why})")
        elif "c_fc" in name or "mlp" in name:
            # ReLU: a hidden unit off at every position passes no gradient.
            notes.append(f"{name}: zero rows {rows} (units inactive on this input)")
        else:
            raise AssertionError(f"{family}: {name} unexpected zero rows {rows}")
    # Columns too: a ReLU unit off everywhere zeros a c_fc column ([in, out]).
    for name, g in params.items():
        if "c_fc.weight" in name and cfg.activation_function == "relu":
            cols = [j for j in range(g.shape[1]) if not torch.any(g[:, j] != 0)]
            if cols:
                notes.append(f"{name}: zero columns {cols} (ReLU units off at every position)")
    if labels is None:
        # The last position predicts nothing under the causal loss.
        assert not torch.any(hooks["hook_logits"][-1] != 0)
        notes.append("grad.hook_logits: last row zero (position T−1 is not scored)")
    else:
        scored = [i for i, t in enumerate(labels) if t != -100]
        unscored = [i for i in range(T) if i not in scored]
        assert not torch.any(hooks["hook_logits"][unscored] != 0)
        notes.append(f"grad.hook_logits: only rows {scored} non-zero (masked positions)")
    return notes


def cross_checks(family, model, ids, labels, logits, params, hooks):
    """Hook gradients against what they must equal by hand, so a wrong capture cannot pass."""
    T, V = logits.shape
    x = torch.tensor(ids)
    probs = torch.softmax(logits.double(), -1)
    if labels is None:
        want = probs.clone()
        want[torch.arange(T - 1), x[1:]] -= 1.0
        want[T - 1] = 0.0
        want /= T - 1
    else:
        lab = torch.tensor(labels)
        scored = lab != -100
        want = probs * scored[:, None]
        want[scored.nonzero()[:, 0], lab[scored]] -= 1.0
        want /= int(scored.sum())
    gap = (hooks["hook_logits"].double() - want).abs().max().item()
    assert gap < 1e-6, f"{family}: grad.hook_logits ≠ (softmax − onehot)/n: {gap:.1e}"
    if labels is not None:
        return
    r0 = hooks["blocks.0.hook_resid_pre"].double()
    if family.startswith("gpt2"):
        # resid_pre[0] = wte[ids] + wpe[0..T): each position row's gradient is wpe's.
        gap = (params["transformer.wpe.weight"][:T].double() - r0).abs().max().item()
        assert gap < 1e-6, f"{family}: wpe grad ≠ grad.blocks.0.hook_resid_pre: {gap:.1e}"
        return
    if getattr(model.config, "tie_word_embeddings", True):
        return
    # Untied: the embedding's gradient is resid_pre[0]'s, summed per token id.
    emb = params["model.embed_tokens.weight"].double()
    want = torch.zeros_like(emb).index_add_(0, x, r0)
    gap = (emb - want).abs().max().item()
    assert gap < 1e-6, f"{family}: embed grad ≠ Σ grad.blocks.0.hook_resid_pre: {gap:.1e}"


def f64_gap(model, ids, labels, params, hooks):
    """Largest |f32 − f64| / max|f64| over all gradients of the same checkpoint."""
    m64 = copy.deepcopy(model).to(torch.float64)
    _, _, p64, h64 = run_with_grads(m64, ids, labels)
    worst, where = 0.0, ""
    for name, ref in list(p64.items()) + list(h64.items()):
        got = params[name] if name in params else hooks[name]
        if name.endswith(EXACT_ZERO):
            assert got.abs().max() < EXACT_ZERO_ABS and ref.abs().max() < 1e-12, name
            continue
        rel = ((got.double() - ref).abs().max() / ref.abs().max().clamp_min(1e-30)).item()
        if rel > worst:
            worst, where = rel, name
    return worst, where


# ---------------------------------------------------------------------------------------------
# Writing


def make(family, out_root):
    torch.manual_seed(0)
    model, ids, labels, note = FAMILIES[family]()
    cls = type(model)
    d = os.path.join(out_root, family)
    if os.path.isdir(d):
        shutil.rmtree(d)
    model.set_attn_implementation("eager")
    with torch.no_grad():
        before = model.eval()(torch.tensor([ids])).logits[0]
    model.save_pretrained(d, safe_serialization=True)
    for f in os.listdir(d):
        os.chmod(os.path.join(d, f), 0o644)
    # Gradients of the checkpoint as it lies on disk, loaded the way any user would.
    model = cls.from_pretrained(d, dtype=torch.float32, attn_implementation="eager").eval()
    emb = model.get_input_embeddings()
    assert emb.padding_idx is None or emb.padding_idx not in ids, "pad id in the input"
    loss, logits, params, hooks = run_with_grads(model, ids, labels)
    assert torch.equal(before, logits), f"{family}: reloaded checkpoint gives other logits"
    cross_checks(family, model, ids, labels, logits, params, hooks)
    notes = check(family, model, ids, labels, loss, logits, params, hooks)
    gap, gap_at = f64_gap(model, ids, labels, params, hooks)
    assert gap < F64_REL_BOUND, f"{family}: f32 vs f64 gradient gap {gap:.2e} at {gap_at}"

    ids_t = torch.tensor(ids, dtype=torch.int64)
    golden = {"hook_logits": logits.contiguous(), "input_ids": ids_t}
    save_file(golden, os.path.join(d, "golden.safetensors"))
    grad = {"loss": loss.reshape(1).float(), "input_ids": ids_t}
    if labels is not None:
        grad["labels"] = torch.tensor(labels, dtype=torch.int64)
    for name, g in params.items():
        grad[f"grad.{name}"] = g.detach().contiguous()
    for k, g in hooks.items():
        grad[f"grad.{k}"] = g.detach().contiguous()
    for k, t in grad.items():
        assert t.dtype == (torch.int64 if k in ("input_ids", "labels") else torch.float32), k
    save_file(grad, os.path.join(d, "grad.safetensors"))

    cfg = model.config
    row = dict(
        family=family, cls=cls.__name__, vocab=cfg.vocab_size, d_model=cfg.hidden_size,
        d_mlp=getattr(cfg, "intermediate_size", None) or getattr(cfg, "n_inner", None),
        layers=cfg.num_hidden_layers, heads=cfg.num_attention_heads,
        kv_heads=getattr(cfg, "num_key_value_heads", cfg.num_attention_heads),
        head_dim=getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads,
        T=len(ids), loss=float(loss), ids=ids, labels=labels, note=note,
        n_params=len(params), f64_gap=gap, f64_gap_at=gap_at, zero_notes=notes,
        bytes=sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d)))
    return row


def print_table(rows):
    print(f"torch {torch.__version__}, transformers {transformers.__version__}")
    print("| family | class | vocab | d | d_mlp | layers | heads/kv/head_dim | T | loss | "
          "f32-vs-f64 grad gap | bytes |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['family']} | {r['cls']} | {r['vocab']} | {r['d_model']} | {r['d_mlp']} | "
              f"{r['layers']} | {r['heads']}/{r['kv_heads']}/{r['head_dim']} | {r['T']} | "
              f"{r['loss']:.4f} | {r['f64_gap']:.1e} | {r['bytes']} |")
    print()
    for r in rows:
        lab = ""
        if r["labels"] is not None:
            lab = "; labels " + ", ".join(
                f"{t} @{i}" for i, t in enumerate(r["labels"]) if t != -100)
        print(f"{r['family']}: {r['note']}; ids {' '.join(map(str, r['ids']))}{lab}")
        for n in r["zero_notes"]:
            print(f"    {n}")


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "tests", "fixtures", "unseen"))
    ap.add_argument("--only", default=",".join(FAMILIES))
    ap.add_argument("--summary-json", default=None)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    rows = [make(f, a.out) for f in a.only.split(",")]
    print_table(rows)
    if a.summary_json:
        with open(a.summary_json, "w") as fh:
            json.dump(rows, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
