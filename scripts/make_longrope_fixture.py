#!/usr/bin/env python3
"""Issue 23: an unseen tiny Phi-3 with `longrope` (Phi-3-mini-128k, Phi-3.5-mini), with golden
hooks from transformers on a prompt that stays within the original context and on one past it.

transformers 5.24 (`modeling_rope_utils.py`, `_compute_longrope_parameters` and the
`dynamic_rope_update` decorator) picks the frequencies per forward call: `short_factor` while
`max(position_ids) + 1 <= original_max_position_embeddings`, `long_factor` past it, and always
scales cos and sin by the attention factor (`sqrt(1 + ln(factor) / ln(original))`, factor =
max_position_embeddings / original_max_position_embeddings, unless the config gives it).

Writes `tests/fixtures/unseen/phi3-longrope/`:
  config.json        in the form the released checkpoints use (4.x: `rope_scaling` with `type`,
                     `original_max_position_embeddings` at the top level), reloaded by transformers;
  model.safetensors  random f32 weights (`save_pretrained`);
  golden-short.safetensors, golden-long.safetensors: every hook below plus `input_ids` (int64),
                     in the fixtures' layout and names (`tests/fixtures/README.md`);
  golden_generate.json: greedy tokens from the short prompt with the KV cache (transformers'
                     `generate`): the new tokens cross into the long factors while the cached
                     keys keep the short ones;
  rope.json          transformers' own short and long `inv_freq` and attention factor;
  golden.safetensors, grad.safetensors: the long prompt's logits and torch autograd gradients
                     in `../README.md`'s layout (`make_unseen_grad_fixtures.run_with_grads`), so
                     `tests/training_families.rs` checks the backward pass past the original context;
  phi3-longrope.gguf the same weights (f32) written with gguf-py's `GGUFWriter` the way
                     llama.cpp's Phi-3 converter (`conversion/phi.py`) writes them: the factors as
                     `rope_factors_{long,short}.weight`, `phi3.rope.scaling.original_context_length`,
                     `phi3.rope.scaling.attn_factor` (its own formula), `sliding_window` 0 for none,
                     gguf-py's tensor names; a stand-in byte-level vocabulary (`t`, `0`, `t0`, `t1`, …).

    /work/peers/venv/bin/python scripts/make_longrope_fixture.py   # a few seconds

(gguf-py: the llama.cpp tree's `gguf-py` when PYTHONPATH names it, else the venv's.)

Running it again writes identical bytes.
"""
import json
import os
import shutil
import sys

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers.modeling_rope_utils import _compute_longrope_parameters  # noqa: E402
from transformers.models.phi3.modeling_phi3 import apply_rotary_pos_emb  # noqa: E402

torch.set_num_threads(2)
torch.use_deterministic_algorithms(True)

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "unseen", "phi3-longrope")
HEAD_DIM = 12
ORIGINAL = 16  # original_max_position_embeddings: the long prompt (24) crosses it
SHORT_T, LONG_T, NEW_TOKENS = 12, 24, 8


def factors(seed):
    g = np.random.default_rng(seed)
    return [round(float(x), 4) for x in g.uniform(1.0, 6.0, HEAD_DIM // 2)]


def config_4x():
    """As Phi-3-mini-128k-instruct's config.json reads (4.x keys)."""
    return {
        "architectures": ["Phi3ForCausalLM"], "model_type": "phi3", "vocab_size": 71,
        "hidden_size": 48, "intermediate_size": 96, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "hidden_act": "silu",
        "max_position_embeddings": 64, "original_max_position_embeddings": ORIGINAL,
        "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        "rope_scaling": {"type": "longrope", "short_factor": factors(1), "long_factor": factors(2)},
        "sliding_window": None, "tie_word_embeddings": False, "attention_dropout": 0.0,
        "embd_pdrop": 0.0, "resid_pdrop": 0.0, "bos_token_id": None, "eos_token_id": None,
        "pad_token_id": None, "torch_dtype": "float32",
    }


def randomise(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            n = torch.randn(p.shape, generator=g, dtype=torch.float32)
            if "norm" in name:
                p.copy_(1.0 + 0.1 * n)
            elif "embed" in name:
                p.copy_(0.5 * n)
            else:
                p.copy_(0.4 * (64.0 / p.shape[1]) ** 0.5 * n)


def collect(model, ids):
    c = model.config
    heads, kv = c.num_attention_heads, c.num_key_value_heads
    got, handles = {}, []
    m = model.model

    def on(module, key, pre=False):
        def keep(t):
            got[key] = t.detach()[0].float().numpy().copy()
        if pre:
            handles.append(module.register_forward_pre_hook(lambda _m, a: keep(a[0])))
        else:
            handles.append(module.register_forward_hook(lambda _m, _i, o: keep(o[0] if isinstance(o, tuple) else o)))

    on(m.embed_tokens, "hook_embed")
    for l, layer in enumerate(m.layers):
        on(layer, f"blocks.{l}.hook_resid_pre", pre=True)
        on(layer.input_layernorm, f"blocks.{l}.ln1.hook_normalized")
        on(layer.self_attn.qkv_proj, f"qkv.{l}")
        on(layer.self_attn.o_proj, f"blocks.{l}.hook_attn_out")
        on(layer.post_attention_layernorm, f"blocks.{l}.hook_resid_mid", pre=True)
        on(layer.post_attention_layernorm, f"blocks.{l}.ln2.hook_normalized")
        on(layer.mlp.down_proj, f"blocks.{l}.mlp.hook_post", pre=True)
        on(layer.mlp, f"blocks.{l}.hook_mlp_out")
        on(layer, f"blocks.{l}.hook_resid_post")
    on(m.norm, "ln_final.hook_normalized")
    rope = {}
    handles.append(m.rotary_emb.register_forward_hook(lambda _m, _i, o: rope.update(cos=o[0], sin=o[1])))
    with torch.no_grad():
        out = model(torch.tensor([ids]), output_attentions=True, use_cache=False)
    for h in handles:
        h.remove()
    t, d = len(ids), HEAD_DIM
    for l in range(c.num_hidden_layers):
        qkv = got.pop(f"qkv.{l}")
        q = qkv[:, : heads * d].reshape(t, heads, d)
        k = qkv[:, heads * d : (heads + kv) * d].reshape(t, kv, d)
        v = qkv[:, (heads + kv) * d :].reshape(t, kv, d)
        got[f"blocks.{l}.attn.hook_q"], got[f"blocks.{l}.attn.hook_k"], got[f"blocks.{l}.attn.hook_v"] = q, k, v
        # transformers' own rotation with the cos/sin its rotary module made for this call
        head_major = lambda x: torch.from_numpy(x).transpose(0, 1)[None]  # noqa: E731
        rq, rk = apply_rotary_pos_emb(head_major(q), head_major(k), rope["cos"], rope["sin"])
        got[f"blocks.{l}.attn.hook_rot_q"] = rq[0].transpose(0, 1).numpy().copy()
        got[f"blocks.{l}.attn.hook_rot_k"] = rk[0].transpose(0, 1).numpy().copy()
        got[f"blocks.{l}.attn.hook_pattern"] = out.attentions[l][0].float().numpy()
    got["hook_logits"] = out.logits[0].float().numpy()
    return got, rope["cos"][0].numpy(), rope["sin"][0].numpy()


def expected_cos(inv_freq, scale, t):
    angles = np.arange(t, dtype=np.float32)[:, None] * np.asarray(inv_freq, np.float32)[None]
    return np.concatenate([np.cos(angles), np.cos(angles)], axis=1) * np.float32(scale)


def write_gguf(model, path):
    import math

    import gguf

    c = model.config
    w = gguf.GGUFWriter(path, "phi3")
    w.add_context_length(c.max_position_embeddings)
    w.add_rope_scaling_orig_ctx_len(ORIGINAL)
    w.add_embedding_length(c.hidden_size)
    w.add_feed_forward_length(c.intermediate_size)
    w.add_block_count(c.num_hidden_layers)
    w.add_head_count(c.num_attention_heads)
    w.add_head_count_kv(c.num_key_value_heads)
    w.add_layer_norm_rms_eps(c.rms_norm_eps)
    w.add_rope_dimension_count(HEAD_DIM)
    w.add_rope_freq_base(10000.0)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_sliding_window(0)
    scale = c.max_position_embeddings / ORIGINAL
    w.add_rope_scaling_attn_factors(math.sqrt(1 + math.log(scale) / math.log(ORIGINAL)))
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-2")
    w.add_token_list(["t", "0"] + [f"t{i}" for i in range(c.vocab_size - 2)])
    w.add_token_types([gguf.TokenType.NORMAL] * c.vocab_size)
    w.add_token_merges(["t 0"])  # gguf-py leaves an empty list out
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.PHI3, c.num_hidden_layers)
    for hf, t in model.state_dict().items():
        w.add_tensor(names.get_name(hf, try_suffixes=(".weight", ".bias")), t.detach().float().numpy())
    scaling = c.rope_parameters
    for kind in ("long", "short"):
        name = gguf.TENSOR_NAMES[getattr(gguf.MODEL_TENSOR, f"ROPE_FACTORS_{kind.upper()}")] + ".weight"
        w.add_tensor(name, np.asarray(scaling[f"{kind}_factor"], np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    cfg = transformers.Phi3Config(**{k: v for k, v in config_4x().items() if k not in ("architectures", "model_type", "torch_dtype")})
    model = transformers.Phi3ForCausalLM(cfg)
    randomise(model, 2323)
    model.save_pretrained(OUT, safe_serialization=True)
    with open(os.path.join(OUT, "config.json"), "w") as f:
        json.dump(config_4x(), f, indent=2)
        f.write("\n")
    model = transformers.Phi3ForCausalLM.from_pretrained(OUT, dtype=torch.float32, attn_implementation="eager").eval()
    c = model.config
    assert c.rope_parameters["rope_type"] == "longrope", c.rope_parameters
    short_inv, attn = _compute_longrope_parameters(c)
    long_inv, _ = _compute_longrope_parameters(c, seq_len=ORIGINAL + 1)
    print(f"attention factor {attn:.6f}, original {ORIGINAL}, max {c.max_position_embeddings}")
    g = np.random.default_rng(2324)
    prompts = {"short": [int(x) for x in g.integers(0, c.vocab_size, SHORT_T)],
               "long": [int(x) for x in g.integers(0, c.vocab_size, LONG_T)]}
    for name, ids in prompts.items():
        got, cos, _sin = collect(model, ids)
        # the pass really used the factors its length calls for
        inv = long_inv if len(ids) > ORIGINAL else short_inv
        err = float(np.abs(cos - expected_cos(inv.numpy(), attn, len(ids))).max())
        assert err < 1e-5, (name, err)
        tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in sorted(got.items())}
        tensors["input_ids"] = torch.tensor(ids, dtype=torch.int64)
        save_file(tensors, os.path.join(OUT, f"golden-{name}.safetensors"))
        print(f"{name}: {len(ids)} tokens, {len(got)} hooks, factors {'long' if len(ids) > ORIGINAL else 'short'}")
    with torch.no_grad():
        gen = model.generate(torch.tensor([prompts["short"]]), max_new_tokens=NEW_TOKENS, do_sample=False,
                             output_scores=True, return_dict_in_generate=True, pad_token_id=0)
    new = gen.sequences[0, SHORT_T:].tolist()
    margins = [float(torch.topk(s[0], 2).values.diff().abs()) for s in gen.scores]
    print(f"greedy {new}, smallest top-1/top-2 margin {min(margins):.4f}")
    with open(os.path.join(OUT, "golden_generate.json"), "w") as f:
        json.dump({"input_ids": prompts["short"], "generated_ids": new, "max_new_tokens": NEW_TOKENS,
                   "do_sample": False, "use_cache": True, "smallest_top1_top2_margin": round(min(margins), 6)}, f, indent=1)
        f.write("\n")
    with open(os.path.join(OUT, "rope.json"), "w") as f:
        json.dump({"short_inv_freq": short_inv.tolist(), "long_inv_freq": long_inv.tolist(),
                   "attention_factor": attn, "original_max_position_embeddings": ORIGINAL}, f, indent=1)
        f.write("\n")
    write_gguf(model, os.path.join(OUT, "phi3-longrope.gguf"))
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from make_unseen_grad_fixtures import run_with_grads
    ids = prompts["long"]
    loss, logits, params, hooks = run_with_grads(model, ids, None)
    ids_t = torch.tensor(ids, dtype=torch.int64)
    save_file({"hook_logits": logits.contiguous(), "input_ids": ids_t}, os.path.join(OUT, "golden.safetensors"))
    grad = {"loss": loss.reshape(1).float(), "input_ids": ids_t}
    grad.update({f"grad.{n}": g.contiguous() for n, g in params.items()})
    grad.update({f"grad.{k}": g.contiguous() for k, g in hooks.items()})
    save_file(grad, os.path.join(OUT, "grad.safetensors"))
    print(f"gradients of the long prompt: loss {float(loss):.4f}, {len(params)} parameters")
    for f in os.listdir(OUT):
        os.chmod(os.path.join(OUT, f), 0o644)
    gen_cfg = os.path.join(OUT, "generation_config.json")
    if os.path.exists(gen_cfg):
        os.remove(gen_cfg)


if __name__ == "__main__":
    sys.exit(main())
