#!/usr/bin/env python3
"""Reference parameter counts for `glassbox arch` (engine/src/load/arch_stats.rs).

For every config under tests/fixtures/configs/*.json and tests/fixtures/tiny-*/config.json the
model is built by transformers on the meta device (no memory, no weights) and its parameters
counted the way `sum(p.numel() for p in model.parameters())` does: a tied tensor once. The
per-component split classifies each parameter by name into the components `glassbox arch`
reports. Prints JSON; the test fixture is its output:

    /work/peers/venv/bin/python scripts/arch-params-golden.py > tests/fixtures/arch_params.json
"""
import glob
import json
import os
import sys

import torch
import transformers
from transformers import CONFIG_MAPPING

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

# The head class each family is run as in Glassbox.
CLASS = {"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM", "gemma3_text": "Gemma3ForCausalLM",
         "gpt2": "GPT2LMHeadModel", "bert": "BertForMaskedLM", "qwen2": "Qwen2ForCausalLM",
         "qwen3": "Qwen3ForCausalLM", "olmo2": "Olmo2ForCausalLM", "phi3": "Phi3ForCausalLM"}


def component(name):
    """The `glassbox arch` component a parameter belongs to, by its transformers name."""
    if name.startswith("lm_head") or name.startswith("cls."):
        return "head"
    if "token_type_embeddings" in name:
        return "token_types"
    if "position_embeddings" in name or name.endswith("wpe.weight"):
        return "positions"
    if "norm" in name.lower() or ".ln_" in name:
        return "norms"
    if "embed_tokens" in name or "word_embeddings" in name or name.endswith("wte.weight"):
        return "embedding"
    if ".attn." in name or ".self_attn." in name or ".attention." in name:
        return "attention"
    if ".mlp." in name or ".intermediate." in name or ".output.dense" in name:
        return "mlp"
    raise SystemExit(f"unclassified parameter {name}")


def count(path):
    with open(path) as f:
        raw = json.load(f)
    model_type = raw["model_type"]
    cfg = CONFIG_MAPPING[model_type].from_dict(raw)
    cls = getattr(transformers, CLASS[model_type])
    with torch.device("meta"):
        model = cls(cfg)
    parts = {}
    for name, p in model.named_parameters():  # shared (tied) tensors are listed once
        key = component(name)
        parts[key] = parts.get(key, 0) + p.numel()
    total = sum(p.numel() for p in model.parameters())
    assert total == sum(parts.values()), path
    return {"class": CLASS[model_type], "params_total": total, "params": parts}


def main():
    paths = sorted(glob.glob(os.path.join(ROOT, "tests/fixtures/configs/*.json")))
    paths += sorted(glob.glob(os.path.join(ROOT, "tests/fixtures/tiny-*/config.json")))
    out = {"transformers": transformers.__version__, "models": {}}
    for path in paths:
        rel = os.path.relpath(path, os.path.join(ROOT, "tests/fixtures"))
        out["models"][rel] = count(path)
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    print()


if __name__ == "__main__":
    main()
