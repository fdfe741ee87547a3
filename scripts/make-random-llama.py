#!/usr/bin/env python3
"""Writes a Llama checkpoint with random bf16 weights in the shape of a real one, to measure
how Glassbox holds a model bigger than SmolLM2 (issue 11, item 4). Nothing here is committed:
the folder is 2.5 GB for the default Llama-3.2-1B shape.

    python3 scripts/make-random-llama.py OUT_DIR [--shape llama-3.2-1b|llama-3.1-8b] [--seed 0]

Needs only numpy. The folder holds config.json (with Llama 3.1 rope scaling) and
model.safetensors (bf16, tied embeddings as the 1B model has them); no tokenizer, so run it
with token ids: `glassbox trace --model OUT_DIR --token-ids 1,2,3 --json`.
"""
import argparse
import json
import os
import struct

import numpy as np

SHAPES = {
    "llama-3.2-1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
                         num_attention_heads=32, num_key_value_heads=8, vocab_size=128256,
                         tie_word_embeddings=True),
    "llama-3.1-8b": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                         num_attention_heads=32, num_key_value_heads=8, vocab_size=128256,
                         tie_word_embeddings=False),
}


def config(shape):
    c = dict(SHAPES[shape])
    c.update(architectures=["LlamaForCausalLM"], model_type="llama", hidden_act="silu",
             max_position_embeddings=131072, rms_norm_eps=1e-5, rope_theta=500000.0,
             rope_scaling=dict(rope_type="llama3", factor=32.0, low_freq_factor=1.0,
                               high_freq_factor=4.0, original_max_position_embeddings=8192),
             bos_token_id=128000, eos_token_id=128001, torch_dtype="bfloat16")
    return c


def tensors(c):
    d, f, v = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    dh = d // c["num_attention_heads"]
    kv = c["num_key_value_heads"] * dh
    yield "model.embed_tokens.weight", (v, d)
    for l in range(c["num_hidden_layers"]):
        p = f"model.layers.{l}."
        yield p + "input_layernorm.weight", (d,)
        yield p + "self_attn.q_proj.weight", (d, d)
        yield p + "self_attn.k_proj.weight", (kv, d)
        yield p + "self_attn.v_proj.weight", (kv, d)
        yield p + "self_attn.o_proj.weight", (d, d)
        yield p + "post_attention_layernorm.weight", (d,)
        yield p + "mlp.gate_proj.weight", (f, d)
        yield p + "mlp.up_proj.weight", (f, d)
        yield p + "mlp.down_proj.weight", (d, f)
    yield "model.norm.weight", (d,)
    if not c["tie_word_embeddings"]:
        yield "lm_head.weight", (v, d)


def bf16(values):
    # Round to nearest even, then keep the top 16 bits of each f32.
    bits = values.astype(np.float32).view(np.uint32)
    bits = bits + 0x7FFF + ((bits >> 16) & 1)
    return (bits >> 16).astype(np.uint16)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--shape", default="llama-3.2-1b", choices=sorted(SHAPES))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    c = config(args.shape)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "config.json"), "w") as fh:
        json.dump(c, fh, indent=1)
    header, offset, specs = {}, 0, list(tensors(c))
    for name, shape in specs:
        n = int(np.prod(shape)) * 2
        header[name] = dict(dtype="BF16", shape=list(shape), data_offsets=[offset, offset + n])
        offset += n
    header["__metadata__"] = dict(format="pt", note="random weights from scripts/make-random-llama.py")
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)
    rng = np.random.default_rng(args.seed)
    path = os.path.join(args.out, "model.safetensors")
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(blob)))
        fh.write(blob)
        for name, shape in specs:
            if name.endswith("norm.weight"):
                values = np.ones(shape, np.float32)
            else:
                # std 0.02, as Llama initializes: activations stay finite through every layer.
                values = rng.standard_normal(shape, dtype=np.float32) * 0.02
            fh.write(bf16(values).tobytes())
    print(f"{path}: {offset / 1e9:.2f} GB of bf16 weights, {offset // 2 / 1e9:.2f} B parameters")


if __name__ == "__main__":
    main()
