#!/usr/bin/env python3
"""transformers' Gemma 3 270M with heads 5.0 and 5.1 ablated (their slice of `o_proj`'s input,
i.e. `hook_z`, zeroed at every position), on the converted folder: the reference for
`glassbox trace --model gemma-3-270m --ablate-heads 5.0,5.1`. Prints JSON with the ids and the
last position's top-10 logits, plain and ablated.

  python3 scripts/gemma-ablation-golden.py ~/.cache/glassbox/models/gemma-3-270m "The capital of France is"
"""
import json, sys

import torch
import transformers

folder, prompt = sys.argv[1], sys.argv[2]
torch.set_num_threads(2)
tok = transformers.AutoTokenizer.from_pretrained(folder)
model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager").eval()
ids = tok(prompt, return_tensors="pt").input_ids
head_dim = model.config.head_dim


def top10(logits):
    v, i = logits[0, -1].topk(10)
    return [[int(a), float(b)] for a, b in zip(i, v)]


with torch.no_grad():
    plain = model(ids).logits
    layer = model.model.layers[5].self_attn

    def zero_heads(_m, args):
        z = args[0].clone()
        z[..., 0 : 2 * head_dim] = 0.0
        return (z,)

    h = layer.o_proj.register_forward_pre_hook(zero_heads)
    ablated = model(ids).logits
    h.remove()
print(json.dumps({"prompt": prompt, "input_ids": ids[0].tolist(), "heads": "5.0,5.1", "plain_top10": top10(plain), "ablated_top10": top10(ablated)}))
