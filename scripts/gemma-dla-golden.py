#!/usr/bin/env python3
"""Direct logit attribution shares on transformers' Gemma 3 270M, worked out from its own modules
(o_proj's input and output, down_proj's output, the final norm's input), for the reference of
`glassbox dla --model gemma-3-270m`. A head's share: its slice of o_proj applied to its slice of
z, times the post-attention norm's (1 + w) over that norm's RMS scale (of the whole o_proj output),
dotted with (1 + w_final) ⊙ W_U[target] over the final norm's scale. An MLP's: the same through
the post-feedforward norm. Prints JSON.

  python3 scripts/gemma-dla-golden.py ~/.cache/glassbox/models/gemma-3-270m "The capital of France is" " Paris"
"""
import json, sys

import torch
import transformers

folder, prompt, target_text = sys.argv[1], sys.argv[2], sys.argv[3]
torch.set_num_threads(2)
tok = transformers.AutoTokenizer.from_pretrained(folder)
m = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager").eval()
ids = tok(prompt).input_ids
(target,) = tok(target_text, add_special_tokens=False).input_ids
cap = {}


def keep_input(name):
    return lambda mod, args: cap.__setitem__(name, args[0].detach())


def keep_output(name):
    return lambda mod, args, out: cap.__setitem__(name, out.detach())


layers = m.model.layers
for l, layer in enumerate(layers):
    layer.self_attn.o_proj.register_forward_pre_hook(keep_input(f"z{l}"))
    layer.self_attn.o_proj.register_forward_hook(keep_output(f"attn{l}"))
    layer.mlp.down_proj.register_forward_hook(keep_output(f"mlp{l}"))
m.model.norm.register_forward_pre_hook(keep_input("final"))
with torch.no_grad():
    logit = m(torch.tensor([ids])).logits[0, -1, target].item()
    eps = m.config.rms_norm_eps
    rms = lambda x: torch.sqrt(x.pow(2).mean(-1) + eps)
    last = len(ids) - 1
    u = (1 + m.model.norm.weight) * m.lm_head.weight[target] / rms(cap["final"][0, last])
    dh = m.config.head_dim
    shares = {}
    for l, layer in enumerate(layers):
        for h in range(m.config.num_attention_heads):
            z = cap[f"z{l}"][0, last, h * dh:(h + 1) * dh]
            head_out = layer.self_attn.o_proj.weight[:, h * dh:(h + 1) * dh] @ z
            s = rms(cap[f"attn{l}"][0, last])
            shares[f"L{l}.H{h}"] = ((head_out * (1 + layer.post_attention_layernorm.weight) / s) @ u).item()
        x = cap[f"mlp{l}"][0, last]
        shares[f"L{l}.mlp"] = ((x * (1 + layer.post_feedforward_layernorm.weight) / rms(x)) @ u).item()
print(json.dumps({"prompt": prompt, "input_ids": ids, "target": target_text, "target_id": target, "logit": logit, "shares": shares}))
