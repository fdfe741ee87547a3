#!/usr/bin/env python3
"""Issue 18: unseen checkpoints of each family, and unseen Gemma prompts, checked the way the
fixtures are (`tests/fixtures/*/golden.safetensors` vs Glassbox).

For Llama, Gemma 3, GPT-2, BERT, Qwen 2, Qwen 3, OLMo 2 and Phi-3 it builds a NEW random checkpoint with transformers (sizes,
head counts, seeds and options none of the fixtures has), saves it as an HF folder (f32
safetensors) in a temp dir, runs transformers on it (eager attention, f32) with forward hooks
on the modules the fixtures README names for each hook, runs `glassbox export --token-ids …`
on the same folder (CPU, and the GPU: lavapipe here) and prints per hook
max|glassbox − transformers| / max|transformers|. Bound: 1e-4 (FIXTURE_HOOK_REL's number).

Then Gemma 3 270M (the cached `gemma-3-270m` folder) on two prompts no test uses: a Chinese one,
and an English one over 512 tokens (past the sliding window). Tokens from transformers'
tokenizer of that folder (BOS added) must equal `glassbox trace --json`'s `token_ids`;
last-position logits (all 262,144) against GEMMA_LOGITS_ABS (4e-3 abs) and
`blocks.{0,5,17}.hook_resid_post` against GEMMA_RESID_REL (3e-3 of max(1, max|ref|)).

    /work/peers/venv/bin/python scripts/check-unseen.py [--bin /tmp/glassbox-bin]
        [--no-gpu] [--no-gemma] [--gemma-gpu none|short|all]
        [--only llama,gemma3,gpt2,bert,qwen2,qwen3,olmo2,phi3]
        [--keep DIR]

About 1.5 min on 2 CPU cores (+5 min with --gemma-gpu short on lavapipe).

Exits 1 if any check fails (each failure is listed at the end), 0 otherwise.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp/glassbox-xdg")
os.makedirs(os.environ["XDG_RUNTIME_DIR"], exist_ok=True)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402

torch.set_num_threads(2)

TINY_REL = 1e-4  # FIXTURE_HOOK_REL
GEMMA_LOGITS_ABS = 4e-3
GEMMA_RESID_REL = 3e-3
GEMMA_DIR = os.path.expanduser("~/.cache/glassbox/models/gemma-3-270m")

FAILURES = []
GPU_NOTES = []


# ---------------------------------------------------------------------------------------------
# Random checkpoints


def randomise(model, seed, gemma_norms=False, emb_std=0.2):
    """Every parameter drawn afresh: linear ~ N(0, (0.2·√(64/fan_in))²), biases N(0, 0.05²),
    embeddings N(0, emb_std²), norm weights 1 + N(0, 0.1²) (Gemma: w ~ N(0, 0.1²) as it uses
    1 + w) and norm biases N(0, 0.1²): nothing is left at 1 or 0."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            n = torch.randn(p.shape, generator=g, dtype=torch.float32)
            low = name.lower()
            is_norm = "norm" in low or ".ln_" in low or "layernorm" in low
            if is_norm:
                if name.endswith("bias"):
                    p.copy_(0.1 * n)
                else:
                    p.copy_((0.0 if gemma_norms else 1.0) + 0.1 * n)
            elif "embed" in low or low.endswith("wte.weight") or low.endswith("wpe.weight"):
                p.copy_(emb_std * n)
            elif p.ndim == 1:
                p.copy_(0.05 * n)
            else:
                # GPT-2's Conv1D keeps [in, out]; nn.Linear keeps [out, in].
                conv1d = any(k in low for k in ("c_attn", "c_proj", "c_fc"))
                fan_in = p.shape[0] if conv1d else p.shape[1]
                p.copy_(0.2 * (64.0 / fan_in) ** 0.5 * n)


def ids_of(seed, vocab, n, avoid=(), mask=None):
    g = np.random.default_rng(seed)
    ids = []
    while len(ids) < n:
        t = int(g.integers(0, vocab))
        if t not in avoid:
            ids.append(t)
    if mask is not None:
        for pos, tok in mask:
            ids[pos] = tok
    return ids


def family_llama():
    # GQA 8/2 (group 4), head_dim 12 (heads·head_dim = 96 ≠ d_model 80), untied head,
    # llama3 rope scaling whose orig_max hits keep, smooth and divide bands, 3 layers.
    cfg = transformers.LlamaConfig(
        vocab_size=113, hidden_size=80, intermediate_size=176, num_hidden_layers=3,
        num_attention_heads=8, num_key_value_heads=2, head_dim=12, hidden_act="silu",
        max_position_embeddings=256, rms_norm_eps=1e-5, tie_word_embeddings=False,
        rope_parameters={"rope_type": "llama3", "rope_theta": 50000.0, "factor": 4.0,
                         "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 64},
        bos_token_id=None, eos_token_id=None, pad_token_id=None)
    model = transformers.LlamaForCausalLM(cfg)
    randomise(model, 5151)
    return model, ids_of(51, 113, 19)


def family_gemma3():
    # window 8 < 24 tokens, sliding/full mixed, query_pre_attn_scalar 20 ≠ head_dim 24,
    # 6 heads over 2 kv heads, linear rope scaling ×4 on the full layers (as Gemma 3 4B has).
    cfg = transformers.Gemma3TextConfig(
        vocab_size=131, hidden_size=72, intermediate_size=200, num_hidden_layers=5,
        num_attention_heads=6, num_key_value_heads=2, head_dim=24,
        hidden_activation="gelu_pytorch_tanh", max_position_embeddings=256, rms_norm_eps=1e-6,
        query_pre_attn_scalar=20, sliding_window=8,
        layer_types=["sliding_attention", "full_attention", "sliding_attention",
                     "sliding_attention", "full_attention"],
        rope_parameters={"sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
                         "full_attention": {"rope_type": "linear", "factor": 4.0,
                                            "rope_theta": 1000000.0}},
        tie_word_embeddings=True, bos_token_id=None, eos_token_id=None, pad_token_id=None)
    model = transformers.Gemma3ForCausalLM(cfg)
    randomise(model, 6262, gemma_norms=True, emb_std=72 ** -0.5)
    return model, ids_of(62, 131, 24)


def family_gpt2():
    # 5 heads of 8, 3 layers, gelu_new, tied head, 48 learned positions.
    cfg = transformers.GPT2Config(
        vocab_size=89, n_embd=40, n_layer=3, n_head=5, n_inner=136, n_positions=48,
        activation_function="gelu_new", layer_norm_epsilon=1e-5, resid_pdrop=0.0,
        embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=None, eos_token_id=None)
    model = transformers.GPT2LMHeadModel(cfg)
    randomise(model, 7373)
    return model, ids_of(73, 89, 21)


def family_bert():
    # 3 heads of 12, 3 layers, two token types (random table; Glassbox gives every token
    # type 0, as transformers does when no token_type_ids are passed), mask id 4 at 3 and 11.
    cfg = transformers.BertConfig(
        vocab_size=83, hidden_size=36, num_hidden_layers=3, num_attention_heads=3,
        intermediate_size=100, hidden_act="gelu", max_position_embeddings=40,
        type_vocab_size=2, layer_norm_eps=1e-12, hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0, pad_token_id=0, tie_word_embeddings=True)
    model = transformers.BertForMaskedLM(cfg)
    randomise(model, 8484)
    return model, ids_of(84, 83, 15, avoid=(0, 4), mask=[(3, 4), (11, 4)])


def family_qwen2():
    # q/k/v biases (random, not 0), 6 heads over 2 kv heads of 12, untied head, 3 layers, θ 1e6.
    cfg = transformers.Qwen2Config(
        vocab_size=109, hidden_size=72, intermediate_size=184, num_hidden_layers=3,
        num_attention_heads=6, num_key_value_heads=2, hidden_act="silu",
        max_position_embeddings=128, rms_norm_eps=1e-6, tie_word_embeddings=False,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
        use_sliding_window=False, bos_token_id=None, eos_token_id=None, pad_token_id=None)
    model = transformers.Qwen2ForCausalLM(cfg)
    randomise(model, 9191)
    return model, ids_of(91, 109, 17)


def family_qwen3():
    # QK-norm per head, 6 heads over 3 kv heads of 20 (heads·head_dim 120 ≠ d_model 48), tied.
    cfg = transformers.Qwen3Config(
        vocab_size=127, hidden_size=48, intermediate_size=136, num_hidden_layers=3,
        num_attention_heads=6, num_key_value_heads=3, head_dim=20, hidden_act="silu",
        max_position_embeddings=128, rms_norm_eps=1e-6, tie_word_embeddings=True,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
        use_sliding_window=False, bos_token_id=None, eos_token_id=None, pad_token_id=None)
    model = transformers.Qwen3ForCausalLM(cfg)
    randomise(model, 9292)
    return model, ids_of(92, 127, 21)


def family_olmo2():
    # norms after the sublayers only, QK-norm over all heads, GQA 8 over 4 kv heads of 8, untied.
    cfg = transformers.Olmo2Config(
        vocab_size=101, hidden_size=64, intermediate_size=150, num_hidden_layers=3,
        num_attention_heads=8, num_key_value_heads=4, hidden_act="silu",
        max_position_embeddings=128, rms_norm_eps=1e-6, tie_word_embeddings=False,
        rope_parameters={"rope_type": "default", "rope_theta": 500000.0},
        bos_token_id=None, eos_token_id=None, pad_token_id=None)
    model = transformers.Olmo2ForCausalLM(cfg)
    randomise(model, 9393)
    return model, ids_of(93, 101, 18)


def family_phi3():
    # fused qkv_proj and gate_up_proj, 5 heads of 12, sliding window 6 over 20 tokens, untied.
    cfg = transformers.Phi3Config(
        vocab_size=97, hidden_size=60, intermediate_size=150, num_hidden_layers=3,
        num_attention_heads=5, num_key_value_heads=5, hidden_act="silu",
        max_position_embeddings=128, original_max_position_embeddings=128, rms_norm_eps=1e-5,
        sliding_window=6, tie_word_embeddings=False, resid_pdrop=0.0, embd_pdrop=0.0,
        attention_dropout=0.0, bos_token_id=None, eos_token_id=None, pad_token_id=None)
    model = transformers.Phi3ForCausalLM(cfg)
    randomise(model, 9494)
    return model, ids_of(94, 97, 20)


LLAMA_LIKE = ("llama", "gemma3", "qwen2", "qwen3", "olmo2", "phi3")


# ---------------------------------------------------------------------------------------------
# transformers side: forward hooks on the modules the fixtures README names


def first(out):
    return out[0] if isinstance(out, (tuple, list)) else out


def collect(model, family, ids):
    got = {}
    handles = []
    n_heads = model.config.num_attention_heads

    def keep(key, fn=None):
        def hook(_m, _inp, out):
            t = first(out).detach()
            if fn is not None:
                t = fn(t)
            elif t.shape[0] == 1:
                t = t[0]
            got[key] = t.float().numpy().copy()
        return hook

    def on(module, key, fn=None):
        handles.append(module.register_forward_hook(keep(key, fn)))

    x = torch.tensor([ids])
    if family in LLAMA_LIKE:
        m = model.model
        if family != "gemma3":
            on(m.embed_tokens, "hook_embed")
        for l, layer in enumerate(m.layers):
            on(layer, f"blocks.{l}.hook_resid_post")
        if family != "olmo2":
            on(m.layers[0].input_layernorm, "blocks.0.ln1.hook_normalized")
        on(m.layers[1].self_attn.o_proj, "blocks.1.hook_attn_out")
        on(m.layers[1].mlp, "blocks.1.hook_mlp_out")
        on(m.norm, "ln_final.hook_normalized")
        if family == "gemma3":
            for l, layer in enumerate(m.layers):
                on(layer.post_attention_layernorm, f"blocks.{l}.ln1_post.hook_normalized")
                on(layer.post_feedforward_layernorm, f"blocks.{l}.ln2_post.hook_normalized")
            # q_norm / k_norm run head-major [1, heads, T, D]; Glassbox keeps [T, heads, D].
            to_pos_major = lambda t: t[0].transpose(0, 1)  # noqa: E731
            on(m.layers[1].self_attn.q_norm, "blocks.1.attn.hook_q_normed", to_pos_major)
            on(m.layers[2].self_attn.k_norm, "blocks.2.attn.hook_k_normed", to_pos_major)
            # mlp.hook_post is down_proj's INPUT (act(gate)·up): a pre-hook.
            handles.append(m.layers[3].mlp.down_proj.register_forward_pre_hook(
                lambda _m, a: got.__setitem__("blocks.3.mlp.hook_post", a[0].detach()[0].numpy().copy())))
        if family in ("qwen2", "qwen3", "phi3"):
            # the pre-MLP norm, named post_attention_layernorm in these checkpoints
            on(m.layers[2].post_attention_layernorm, "blocks.2.ln2.hook_normalized")
        if family == "olmo2":
            for l, layer in enumerate(m.layers):
                on(layer.post_attention_layernorm, f"blocks.{l}.ln1_post.hook_normalized")
                on(layer.post_feedforward_layernorm, f"blocks.{l}.ln2_post.hook_normalized")
        if family in ("qwen3", "olmo2"):
            # Qwen 3 norms [1, T, heads, D]; OLMo 2 [1, T, heads·D]: both as [T, heads, D].
            d = getattr(model.config, "head_dim", None) or model.config.hidden_size // n_heads
            split = lambda t: t[0].reshape(t.shape[1], -1, d)  # noqa: E731
            on(m.layers[0].self_attn.q_norm, "blocks.0.attn.hook_q_normed", split)
            on(m.layers[1].self_attn.k_norm, "blocks.1.attn.hook_k_normed", split)
        if family != "gemma3":
            handles.append(m.layers[1].mlp.down_proj.register_forward_pre_hook(
                lambda _m, a: got.__setitem__("blocks.1.mlp.hook_post", a[0].detach()[0].numpy().copy())))
    elif family == "gpt2":
        m = model.transformer
        on(m.wte, "hook_embed")
        on(m.wpe, "hook_pos_embed")
        for l, layer in enumerate(m.h):
            on(layer, f"blocks.{l}.hook_resid_post")
        on(m.h[0].ln_1, "blocks.0.ln1.hook_normalized")
        on(m.h[2].attn.c_proj, "blocks.2.hook_attn_out")
        on(m.h[1].mlp.act, "blocks.1.mlp.hook_post")
        on(m.ln_f, "ln_final.hook_normalized")
    elif family == "bert":
        m = model.bert
        on(m.embeddings.word_embeddings, "hook_embed")
        on(m.embeddings.position_embeddings, "hook_pos_embed")
        on(m.embeddings.token_type_embeddings, "hook_token_type_embed")
        on(m.embeddings, "blocks.0.hook_resid_pre")
        for l, layer in enumerate(m.encoder.layer):
            on(layer, f"blocks.{l}.hook_resid_post")
        on(m.encoder.layer[1].attention.output, "blocks.1.hook_resid_mid")
        on(m.encoder.layer[2].intermediate, "blocks.2.mlp.hook_post")
        on(model.cls.predictions.transform, "hook_mlm_transform")

    with torch.no_grad():
        out = model(x, output_attentions=True, use_cache=False)
    for h in handles:
        h.remove()
    if family == "gemma3":
        got["hook_embed"] = model.model.embed_tokens.weight[x[0]].detach().numpy().copy()
    got["hook_logits"] = out.logits[0].float().numpy()
    atts = out.attentions
    assert atts is not None and len(atts) == model.config.num_hidden_layers, "no attentions"
    for l, a in enumerate(atts):
        assert a.shape[1] == n_heads
        got[f"blocks.{l}.attn.hook_pattern"] = a[0].float().numpy()
    if family == "gemma3":
        # the reference really slides: a sliding layer's pattern is 0 for keys ≤ q − window,
        # a full layer's is not
        w, t = model.config.sliding_window, len(ids)
        far = np.tril(np.ones((t, t), bool), -w)
        for l, kind in enumerate(model.config.layer_types):
            p = got[f"blocks.{l}.attn.hook_pattern"]
            outside = float(np.abs(p[:, far]).max())
            assert (outside == 0.0) == (kind == "sliding_attention"), (l, kind, outside)
    return got


# ---------------------------------------------------------------------------------------------
# Glassbox side


def glassbox_export(binary, model_dir, ids, hooks, device, out_dir, timeout=900):
    out = os.path.join(out_dir, f"gb-{device}.npz")
    cmd = [binary, "export", "--model", model_dir, "--token-ids", ",".join(map(str, ids)),
           "--hooks", ",".join(hooks), "--out", out, "--device", device]
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    secs = time.perf_counter() - t
    if r.returncode != 0:
        return None, (r.stderr.strip() or r.stdout.strip())[-800:], secs
    with np.load(out) as z:
        arrays = {k: z[k] for k in z.files}
    os.remove(out)
    return arrays, None, secs


def is_no_adapter(msg):
    low = msg.lower()
    return any(w in low for w in ("adapter", "vulkan", "no gpu", "no suitable", "wgpu"))


def rel(a, b):
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if not np.all(np.isfinite(a)):
        return float("inf"), float("inf")
    d = float(np.max(np.abs(a - b)))
    return d / float(np.max(np.abs(b))), d


def check_family(name, build, args, work):
    print(f"\n=== {name} ===", flush=True)
    model, ids = build()
    model.eval()
    d = os.path.join(work, name)
    model.save_pretrained(d, safe_serialization=True)
    with open(os.path.join(d, "config.json")) as f:
        c = json.load(f)
    # run the saved folder, not the object: what is compared is what was written
    cls = type(model)
    model = cls.from_pretrained(d, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    ref = collect(model, name, ids)
    hooks = sorted(ref)
    show = {k: c.get(k) for k in ("hidden_size", "n_embd", "num_hidden_layers", "n_layer",
                                  "num_attention_heads", "n_head", "num_key_value_heads",
                                  "head_dim", "sliding_window", "layer_types",
                                  "query_pre_attn_scalar", "activation_function",
                                  "type_vocab_size", "tie_word_embeddings", "rope_parameters")
            if c.get(k) is not None}
    print(f"config: {json.dumps(show)}")
    print(f"{len(ids)} ids: {' '.join(map(str, ids))}")
    results = {}
    for device in ["cpu"] + ([] if args.no_gpu else ["gpu"]):
        arrays, err, secs = glassbox_export(args.bin, d, ids, hooks, device, work)
        if err is not None:
            if device == "gpu" and is_no_adapter(err):
                GPU_NOTES.append(f"{name}: GPU skipped ({err.splitlines()[-1]})")
                continue
            FAILURES.append(f"{name} {device}: glassbox export failed: {err}")
            print(f"{device}: glassbox export FAILED: {err}")
            continue
        results[device] = (arrays, secs)
    print(f"{'hook':<40} {'shape':<16} {'max|ref|':>9} {'cpu rel':>9} {'gpu rel':>9}")
    worst = {}
    for k in hooks:
        b = ref[k]
        cells = []
        for device in ("cpu", "gpu"):
            if device not in results:
                cells.append("-")
                continue
            a = results[device][0].get(k)
            if a is None:
                cells.append("missing")
                FAILURES.append(f"{name} {device}: {k} not exported")
                continue
            if a.shape != b.shape:
                cells.append("shape!")
                FAILURES.append(f"{name} {device}: {k} shape {a.shape} vs transformers {b.shape}")
                continue
            r, dabs = rel(a, b)
            cells.append(f"{r:.2e}")
            if r > worst.get(device, (-1, None))[0]:
                worst[device] = (r, k)
            if not r <= TINY_REL:
                FAILURES.append(f"{name} {device}: {k} rel {r:.3e} (max abs {dabs:.3e}, "
                                f"max|ref| {np.max(np.abs(b)):.3e}) > {TINY_REL}")
        shape = "x".join(map(str, b.shape))
        print(f"{k:<40} {shape:<16} {np.max(np.abs(b)):>9.3g} {cells[0]:>9} {cells[1]:>9}")
    for device, (r, k) in worst.items():
        print(f"{name} {device}: worst {r:.2e} at {k} "
              f"(export {results[device][1]:.2f} s)")
    return {dev: worst[dev] for dev in worst}


# ---------------------------------------------------------------------------------------------
# Gemma 3 270M on unseen prompts

CHINESE = (
    "春天来了，山坡上的桃花和杏花都开了，远远望去像一片粉红色的云。"
    "小明和他的奶奶沿着河边慢慢地走，一边聊天一边看水里游来游去的小鱼。"
    "奶奶说，她小时候这条河比现在宽得多，夏天的晚上大家都会坐在岸边乘凉、讲故事。"
    "如今村里修了新的公路，年轻人大多去了城市工作，但每到清明节，他们还是会回来。"
    "你觉得，家乡最让人怀念的是什么？"
)

ENGLISH_LONG = """\
The lighthouse keeper's logbook for the winter of 1911 survives in a small museum on the coast,
and it reads less like a diary than a ledger: wind direction, visibility, barometric pressure,
the number of gallons of paraffin burned each night. Yet between the columns of numbers there
are sentences that hint at a life. "Fog again. Heard a steamer's horn for two hours, never saw
her." "The cat has decided the lamp room is warmer than the kitchen, and she is right." On the
fourteenth of February he wrote only: "Storm. Glass cracked in the north pane. Held."

Modern readers tend to romanticise such solitude, but the work was relentless. The lens had to
be polished every morning, the wicks trimmed, the clockwork that turned the apparatus wound
every few hours through the night. A single lapse could put a ship on the rocks, and the
keepers knew the names of the vessels that had been lost before the light was built.

Consider, by contrast, a very different kind of vigilance. A software engineer on call for a
payment service watches dashboards instead of horizons. When the error rate on the checkout
endpoint climbs from 0.02% to 3.5% at 02:17 UTC, a pager goes off, and the engineer opens a
laptop in the dark. The first question is always the same: what changed? A deploy at 01:58
rolled out a new connection-pool setting (max_idle = 4 instead of 32), and under the night's
traffic from another time zone the pool was exhausted within minutes. Rolling back took
ninety seconds; writing the incident review took most of the next afternoon.

Recipe for a simple loaf: mix 500 g of strong white flour, 10 g of salt, 7 g of dried yeast
and 350 ml of lukewarm water. Knead for ten minutes until the dough is smooth and springs back
when pressed. Leave it covered for an hour, or until doubled in size; knock it back, shape it,
and let it prove for another 45 minutes. Bake at 220 °C for 30 to 35 minutes. The loaf is done
when it sounds hollow as you tap the base.

In mathematics, a prime number is a natural number greater than 1 that has no positive
divisors other than 1 and itself. The first few are 2, 3, 5, 7, 11, 13, 17, 19, 23 and 29.
Euclid proved that there are infinitely many: suppose the list p1, p2, ..., pn were complete,
and consider N = p1 * p2 * ... * pn + 1. Dividing N by any prime on the list leaves a
remainder of 1, so either N is prime itself or it has a prime factor missing from the list.
Either way, the list was not complete.

def fibonacci(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a

The function above returns the n-th Fibonacci number in linear time; fibonacci(10) is 55.

Migrating birds navigate with an astonishing mix of tools. Some species read the position of
the sun and correct for its movement across the sky through the day; others, flying at night,
orient by the rotation of the stars around the celestial pole. Many can sense the Earth's
magnetic field, perhaps through light-sensitive proteins in their eyes. Young cuckoos,
raised by foster parents of another species, still find their way to wintering grounds in
Africa they have never seen, guided by an inherited program of direction and distance.

Back at the lighthouse, the final entry of that winter is dated the twenty-first of March:
"Wind light from the south-west. Swallows seen over the point. Visibility excellent." The
keeper, it seems, had been waiting for them. So, perhaps, had we all, and the question of
what the next spring would bring is one that"""


def gemma_prompts(args, work):
    print("\n=== Gemma 3 270M, unseen prompts ===", flush=True)
    tok = transformers.AutoTokenizer.from_pretrained(GEMMA_DIR)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        GEMMA_DIR, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    layers = (0, 5, 17)
    rows = []
    gpu_for = {"none": (), "short": ("chinese",), "all": ("chinese", "english-long")}[args.gemma_gpu]
    for label, text in (("chinese", CHINESE), ("english-long", ENGLISH_LONG)):
        gpu = label in gpu_for and not args.no_gpu
        ids = tok(text)["input_ids"]
        assert ids[0] == tok.bos_token_id == 2, f"no BOS first: {ids[:3]}"
        print(f"\n{label}: {len(ids)} tokens (BOS {ids[0]} first)")
        # tokenizer agreement
        pf = os.path.join(work, f"{label}.txt")
        with open(pf, "w", encoding="utf-8") as f:
            f.write(text)
        r = subprocess.run([args.bin, "trace", "--model", "gemma-3-270m", "--prompt-file", pf,
                            "--json"], capture_output=True, text=True, timeout=900)
        if r.returncode != 0:
            FAILURES.append(f"gemma {label}: glassbox trace failed: {r.stderr[-500:]}")
            gb_ids = None
        else:
            gb_ids = json.loads(r.stdout)["token_ids"]
        same = gb_ids == ids
        if not same:
            first_diff = next((i for i, (a, b) in enumerate(zip(gb_ids or [], ids)) if a != b),
                              min(len(gb_ids or []), len(ids)))
            FAILURES.append(f"gemma {label}: token ids differ (glassbox {len(gb_ids or [])} vs "
                            f"transformers {len(ids)}, first at {first_diff})")
        print(f"tokenizer: glassbox trace token_ids == transformers ids: {same}")

        # transformers
        kept = {}
        hs = [model.model.layers[l].register_forward_hook(
            (lambda l: lambda _m, _i, o: kept.__setitem__(l, first(o)[0].detach().numpy().copy()))(l))
            for l in layers]
        t = time.perf_counter()
        with torch.no_grad():
            out = model(torch.tensor([ids]), use_cache=False, logits_to_keep=1)
        for h in hs:
            h.remove()
        ref_logits = out.logits[0, -1].float().numpy()
        print(f"transformers forward {time.perf_counter() - t:.1f} s")

        hooks = [f"blocks.{l}.hook_resid_post" for l in layers] + ["hook_logits"]
        for device in ["cpu"] + (["gpu"] if gpu else []):
            arrays, err, secs = glassbox_export(args.bin, "gemma-3-270m", ids, hooks, device, work)
            if err is not None:
                if device == "gpu" and is_no_adapter(err):
                    GPU_NOTES.append(f"gemma {label}: GPU skipped ({err.splitlines()[-1]})")
                    continue
                FAILURES.append(f"gemma {label} {device}: glassbox export failed: {err}")
                continue
            gl = arrays["hook_logits"][-1]
            dlog = float(np.max(np.abs(gl.astype(np.float64) - ref_logits)))
            lrel = dlog / float(np.max(np.abs(ref_logits)))
            top_same = int(np.argmax(gl)) == int(np.argmax(ref_logits))
            row = {"prompt": label, "tokens": len(ids), "device": device, "secs": secs,
                   "dlogit": dlog, "logit_rel": lrel, "argmax_same": top_same}
            if not dlog <= GEMMA_LOGITS_ABS:
                FAILURES.append(f"gemma {label} {device}: max |Δlogit| {dlog:.3e} > {GEMMA_LOGITS_ABS}")
            if not top_same:
                FAILURES.append(f"gemma {label} {device}: argmax differs")
            for l in layers:
                a = arrays[f"blocks.{l}.hook_resid_post"]
                b = kept[l]
                if a.shape != b.shape:
                    FAILURES.append(f"gemma {label} {device}: L{l} shape {a.shape} vs {b.shape}")
                    continue
                last_rel, last_abs = rel(a[-1], b[-1])
                all_rel, _ = rel(a, b)
                # the tests' measure: max abs over max(1, max |ref|)
                last_t = last_abs / max(1.0, float(np.max(np.abs(b[-1]))))
                row[f"L{l}"] = (last_rel, all_rel, float(np.max(np.abs(b[-1]))))
                if not last_t <= GEMMA_RESID_REL:
                    FAILURES.append(f"gemma {label} {device}: blocks.{l}.hook_resid_post last "
                                    f"position {last_t:.3e} > {GEMMA_RESID_REL}")
            rows.append(row)
            del arrays
    print(f"\n{'prompt':<13} {'T':>4} {'dev':<4} {'max|Δlogit|':>11} {'logit rel':>9} {'top1':>5} "
          + " ".join(f"{'L%d last(all)' % l:>20}" for l in layers) + f" {'secs':>6}")
    for r in rows:
        cells = " ".join(f"{r[f'L{l}'][0]:>9.2e} ({r[f'L{l}'][1]:.2e})" for l in layers)
        print(f"{r['prompt']:<13} {r['tokens']:>4} {r['device']:<4} {r['dlogit']:>11.2e} "
              f"{r['logit_rel']:>9.2e} {str(r['argmax_same']):>5} {cells} {r['secs']:>6.1f}")
    print("(L rel = max|Δ| / max|ref| at the last position; in brackets over every position)")
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.environ.get("GLASSBOX_BIN", "/tmp/glassbox-bin"))
    ap.add_argument("--no-gpu", action="store_true")
    ap.add_argument("--no-gemma", action="store_true", help="skip the Gemma 3 270M prompts")
    ap.add_argument("--gemma-gpu", choices=("none", "short", "all"), default="none",
                    help="Gemma 3 270M prompts on the GPU too: none, the Chinese one, or both "
                         "(lavapipe: about 5 min for the 113-token one on 2 shared cores)")
    ap.add_argument("--only", default="llama,gemma3,gpt2,bert,qwen2,qwen3,olmo2,phi3")
    ap.add_argument("--keep", help="write the random checkpoints here instead of a temp dir")
    args = ap.parse_args()
    print(f"transformers {transformers.__version__}, torch {torch.__version__}, glassbox {args.bin}")
    work = args.keep or tempfile.mkdtemp(prefix="check-unseen-")
    os.makedirs(work, exist_ok=True)
    builders = {"llama": family_llama, "gemma3": family_gemma3, "gpt2": family_gpt2,
                "bert": family_bert, "qwen2": family_qwen2, "qwen3": family_qwen3,
                "olmo2": family_olmo2, "phi3": family_phi3}
    summary = {}
    try:
        for name in args.only.split(","):
            if name:
                try:
                    summary[name] = check_family(name, builders[name], args, work)
                except Exception as e:  # a crash is a failure of that family, not of the run
                    FAILURES.append(f"{name}: {type(e).__name__}: {e}")
                    print(f"{name}: ERROR {type(e).__name__}: {e}")
        if not args.no_gemma:
            try:
                gemma_prompts(args, work)
            except Exception as e:
                FAILURES.append(f"gemma prompts: {type(e).__name__}: {e}")
                print(f"gemma prompts: ERROR {type(e).__name__}: {e}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print("\n=== summary (worst hook per family, max|Δ| / max|ref|, bound %.0e) ===" % TINY_REL)
    for name, w in summary.items():
        print(f"{name:<7} " + "  ".join(f"{dev}: {r:.2e} ({k})" for dev, (r, k) in w.items()))
    for n in GPU_NOTES:
        print("note:", n)
    if FAILURES:
        print(f"\nFAILED ({len(FAILURES)}):")
        for f in FAILURES:
            print("  -", f)
        return 1
    print("\nall checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
