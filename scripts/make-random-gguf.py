#!/usr/bin/env python3
"""Writes a random-weight Llama GGUF whose tensors keep a chosen GGML block type, to test and
measure Glassbox's native quantized path (issue 22) without downloading a model.

    python scripts/make-random-gguf.py OUT.gguf --shape llama-3.1-8b [--type Q4_K_M] [--seed 0]
    python scripts/make-random-gguf.py OUT.gguf --shape tiny --type Q5_1 [--reference OUT.json]

Runs under a Python with gguf-py and numpy (`/work/peers/venv/bin/python`).

Shapes: `llama-3.1-8b` is Llama 3.1 8B's real layout (32 layers, d_model 4096, 32 query / 8
key-value heads of 128, d_mlp 14336, vocabulary 128,256, untied `output.weight`, RoPE base
500000 with Llama 3 scaling stored as llama.cpp stores it: a `rope_freqs.weight` tensor of 64
divisors, context 131072). `tiny` is 2 layers, d_model 256 (the narrowest width a K-quant
row allows), 4 heads / 2 key-value heads of 64, d_mlp 256, 300 tokens; `tiny-128` is the same
at d_model 128 (heads of 32) for the types whose blocks are 32 wide or narrower.
`tiny-llama3` has the 8B file's vocabulary, RoPE scaling and 128-wide heads on 2 layers of 256.

Types: one GGML type for every matrix (F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K,
Q6_K), or `Q4_K_M`: llama.cpp's recipe for that file type (`llama-quant.cpp`): Q4_K everywhere,
Q6_K for `output.weight` and for `attn_v` / `ffn_down` in the layers `use_more_bits` picks
(the first and last eighth and every third layer between). Norms and `rope_freqs` are F32.

Values: weights drawn ~ N(0, 1/fan_in) and really quantized by gguf-py where it can
(`gguf.quants.quantize`: F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1). The K-quants (gguf-py
only dequantizes them) and every tensor of a big shape (quantizing 8 B weights in numpy takes
too long) are random block bytes instead, with each block's f16 scale (and min) set so that
the dequantized values have about the same spread: finite, mean near 0, std ~ 1/sqrt(fan_in).
As in real files, the Q6_K scales come out below f16's smallest normal number (~1e-5).

Tokenizer: byte-level BPE (`gpt2`, pre-tokenizer `llama-bpe`): the 256 byte tokens, generated
merges of letters, then special tokens (for the 8B shape Llama 3's 256, `<|begin_of_text|>` =
128000 ... `<|reserved_special_token_247|>` = 128255).

Tensors are generated and written one at a time (a 4.9 GB file never sits in memory). The
same seed gives the same file. `--reference OUT.json` also writes, for a few matrices, the
first 64 values gguf-py dequantizes from the file's own bytes (tensor name -> list).
"""
import argparse
import json
import math
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T

SHAPES = {
    "llama-3.1-8b": dict(layers=32, d=4096, heads=32, kv=8, d_mlp=14336, vocab=128256,
                         ctx=131072, theta=500000.0, llama3=True, specials="llama3"),
    # The 8B file's vocabulary, RoPE scaling and head size on 2 narrow layers: checks what the
    # 8B file's metadata converts to without a 32 GB f32 conversion.
    "tiny-llama3": dict(layers=2, d=256, heads=2, kv=1, d_mlp=256, vocab=128256, ctx=131072,
                        theta=500000.0, llama3=True, specials="llama3"),
    "tiny": dict(layers=2, d=256, heads=4, kv=2, d_mlp=256, vocab=300, ctx=2048,
                 theta=10000.0, llama3=False, specials="tiny"),
    "tiny-128": dict(layers=2, d=128, heads=4, kv=2, d_mlp=256, vocab=300, ctx=2048,
                     theta=10000.0, llama3=False, specials="tiny"),
}

SINGLE_TYPES = ["F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K"]
# gguf-py has quantizers for these; the K-quants it can only dequantize.
REAL_QUANT = {T.F16, T.BF16, T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1}
# llama.cpp's LLAMA_FTYPE values, for general.file_type.
FILE_TYPE = {"F16": 1, "BF16": 32, "Q8_0": 7, "Q4_0": 2, "Q4_1": 3, "Q5_0": 8, "Q5_1": 9,
             "Q4_K": 14, "Q5_K": 16, "Q6_K": 18, "Q4_K_M": 15}
# (low_freq_factor, high_freq_factor, original context, factor) of Llama 3.1.
LLAMA3_SCALING = (1.0, 4.0, 8192, 8.0)
CHUNK_ROWS_BYTES = 64 << 20


def use_more_bits(i, n):
    """llama.cpp's rule for which layers of a _M file get the bigger type."""
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def tensor_plan(s, qtype):
    """(gguf name, rows, cols, ggml type, fan_in) in llama.cpp's order."""
    d, f, hd = s["d"], s["d_mlp"], s["d"] // s["heads"]
    kv = s["kv"] * hd
    mixed = qtype == "Q4_K_M"
    base = T.Q4_K if mixed else T[qtype]
    big = T.Q6_K if mixed else base
    plan = [("token_embd.weight", s["vocab"], d, base, d)]
    if s["llama3"]:
        plan.append(("rope_freqs.weight", 1, hd // 2, T.F32, None))
    n = s["layers"]
    for i in range(n):
        p = f"blk.{i}."
        more = big if use_more_bits(i, n) else base
        plan += [
            (p + "attn_norm.weight", 1, d, T.F32, None),
            (p + "attn_q.weight", d, d, base, d),
            (p + "attn_k.weight", kv, d, base, d),
            (p + "attn_v.weight", kv, d, more, d),
            (p + "attn_output.weight", d, d, base, d),
            (p + "ffn_norm.weight", 1, d, T.F32, None),
            (p + "ffn_gate.weight", f, d, base, d),
            (p + "ffn_up.weight", f, d, base, d),
            (p + "ffn_down.weight", d, f, more, f),
        ]
    plan += [("output_norm.weight", 1, d, T.F32, None), ("output.weight", s["vocab"], d, big, d)]
    return plan


def row_bytes(ty, cols):
    per, size = gguf.GGML_QUANT_SIZES[ty]
    if cols % per:
        raise SystemExit(f"{ty.name} needs rows a multiple of {per} wide; this shape has {cols}")
    return cols // per * size


# --- random blocks with calibrated scales ---------------------------------------------

def scale_fields(ty):
    """Byte offsets of a block's f16 scale and (if any) f16 min."""
    return {T.Q4_K: (0, 2), T.Q5_K: (0, 2), T.Q6_K: (208, None), T.Q8_0: (0, None),
            T.Q4_0: (0, None), T.Q5_0: (0, None), T.Q4_1: (0, 2), T.Q5_1: (0, 2)}[ty]


def blocks_with(raw, ty, d, dmin):
    """`raw` (n, block bytes) with each block's scale and min replaced by the given arrays."""
    at_d, at_m = scale_fields(ty)
    raw[:, at_d:at_d + 2] = d.astype(np.float16).reshape(-1, 1).view(np.uint8)
    if at_m is not None:
        raw[:, at_m:at_m + 2] = dmin.astype(np.float16).reshape(-1, 1).view(np.uint8)
    return raw


def calibrate(ty):
    """(d for unit std, dmin/d ratio giving mean ~0) for random bytes of this type."""
    rng = np.random.default_rng(12345)
    per, size = gguf.GGML_QUANT_SIZES[ty]
    n = 2048
    raw = rng.integers(0, 256, (n, size), dtype=np.uint8)
    ones, zeros = np.ones(n), np.zeros(n)
    at_m = scale_fields(ty)[1]
    ratio = 0.0
    if at_m is not None:
        mean_d = gguf.quants.dequantize(blocks_with(raw.copy(), ty, ones, zeros), ty).mean()
        mean_m = gguf.quants.dequantize(blocks_with(raw.copy(), ty, zeros, ones), ty).mean()
        ratio = float(mean_d / -mean_m)
    vals = gguf.quants.dequantize(blocks_with(raw.copy(), ty, ones, ones * ratio), ty)
    return 1.0 / float(vals.std()), ratio


CALIBRATION = {}


def random_blocks(rng, ty, rows, cols, std):
    per, size = gguf.GGML_QUANT_SIZES[ty]
    if ty not in CALIBRATION:
        CALIBRATION[ty] = calibrate(ty)
    unit, ratio = CALIBRATION[ty]
    n = rows * cols // per
    raw = np.frombuffer(rng.bytes(n * size), dtype=np.uint8).reshape(n, size).copy()
    # A spread of scales per block, as a real file has.
    d = std * unit * rng.uniform(0.75, 1.25, n)
    return blocks_with(raw, ty, d, d * ratio).reshape(rows, cols // per * size)


def real_quantized(rng, ty, rows, cols, std):
    w = (rng.standard_normal((rows, cols), dtype=np.float32) * np.float32(std))
    q = gguf.quants.quantize(w, ty)
    return np.ascontiguousarray(q).view(np.uint8).reshape(rows, -1)


def tensor_chunks(rng, name, rows, cols, ty, fan_in, s, real):
    """The tensor's bytes, a band of rows at a time."""
    if ty == T.F32:
        yield f32_vector(rng, name, cols, s)
        return
    std = 1.0 / math.sqrt(fan_in)
    band = max(1, CHUNK_ROWS_BYTES // row_bytes(ty, cols))
    for r0 in range(0, rows, band):
        r = min(band, rows - r0)
        # F16 and BF16 have no scale to calibrate: always real values.
        if ty in (T.F16, T.BF16) or (real and ty in REAL_QUANT):
            yield real_quantized(rng, ty, r, cols, std)
        else:
            yield random_blocks(rng, ty, r, cols, std)


def f32_vector(rng, name, n, s):
    if name == "rope_freqs.weight":
        return llama3_divisors(n * 2, s["theta"]).view(np.uint8)
    # RMSNorm weights 1 + N(0, 0.01^2), as the tiny Llama fixtures have them.
    return (1.0 + 0.01 * rng.standard_normal(n)).astype(np.float32).view(np.uint8)


def llama3_divisors(head_dim, theta):
    """What llama.cpp's converter stores in rope_freqs for Llama 3 scaling."""
    low, high, orig, factor = LLAMA3_SCALING
    out = []
    for i in range(0, head_dim, 2):
        wavelen = 2 * math.pi * theta ** (i / head_dim)
        if wavelen < orig / high:
            out.append(1.0)
        elif wavelen > orig / low:
            out.append(factor)
        else:
            smooth = (orig / wavelen - low) / (high - low)
            out.append(1.0 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


# --- tokenizer --------------------------------------------------------------------------

def byte_tokens():
    """GPT-2's byte -> printable character map, in byte order."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    table = dict(zip(bs, cs))
    return [chr(table[b]) for b in range(256)]


def special_tokens(kind, n):
    if kind == "tiny":
        names = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<|reserved_special_token_0|>"]
        return names[:n]
    fixed = {0: "<|begin_of_text|>", 1: "<|end_of_text|>", 4: "<|finetune_right_pad_id|>",
             6: "<|start_header_id|>", 7: "<|end_header_id|>", 8: "<|eom_id|>", 9: "<|eot_id|>",
             10: "<|python_tag|>"}
    out, reserved = [], 0
    for i in range(n):
        if i in fixed:
            out.append(fixed[i])
        else:
            out.append(f"<|reserved_special_token_{reserved}|>")
            reserved += 1
    return out


def vocabulary(s, seed):
    """(tokens, token types, merges): bytes, merged words, then specials (control)."""
    n_special = 256 if s["specials"] == "llama3" else 4
    n_merges = s["vocab"] - 256 - n_special
    rng = np.random.default_rng(seed + 7)
    tokens = byte_tokens()
    have = set(tokens)
    letters = [c for c in "etaoinshrdlcumwfgypbvkjxqzETAOINSHRDLCUMWFGYPBVKJXQZĠ"]
    pool = letters[:]
    merges = []
    while len(merges) < n_merges:
        # Short tokens are picked more often, so merged words stay short, as in a real BPE.
        a = pool[int(len(pool) * rng.random() ** 3)]
        b = pool[int(len(pool) * rng.random() ** 2)]
        if b.startswith("Ġ") or len(a) + len(b) > 12 or a + b in have:
            continue
        merges.append(f"{a} {b}")
        have.add(a + b)
        pool.append(a + b)
        tokens.append(a + b)
    specials = special_tokens(s["specials"], n_special)
    types = [1] * len(tokens) + [3] * len(specials)
    return tokens + specials, types, merges


# --- the file -------------------------------------------------------------------------

def add_metadata(w, s, qtype, seed):
    tokens, types, merges = vocabulary(s, seed)
    assert len(tokens) == s["vocab"], (len(tokens), s["vocab"])
    hd = s["d"] // s["heads"]
    w.add_name(f"random Llama ({s['layers']} layers, d_model {s['d']}) {qtype} seed {seed}")
    w.add_block_count(s["layers"])
    w.add_context_length(s["ctx"])
    w.add_embedding_length(s["d"])
    w.add_feed_forward_length(s["d_mlp"])
    w.add_head_count(s["heads"])
    w.add_head_count_kv(s["kv"])
    w.add_rope_freq_base(s["theta"])
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(hd)
    w.add_vocab_size(s["vocab"])
    w.add_file_type(FILE_TYPE[qtype])
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("llama-bpe")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    first_special = types.index(3)
    w.add_bos_token_id(first_special)
    w.add_eos_token_id(first_special + (9 if s["specials"] == "llama3" else 2))
    w.add_add_bos_token(True)


def write(path, shape, qtype, seed, real):
    s = SHAPES[shape]
    plan = tensor_plan(s, qtype)
    w = gguf.GGUFWriter(path, "llama")
    add_metadata(w, s, qtype, seed)
    for name, rows, cols, ty, _ in plan:
        # Given uint8 data, gguf-py takes the shape in bytes and works out the element shape.
        byte_shape = (row_bytes(ty, cols),) if rows == 1 else (rows, row_bytes(ty, cols))
        nbytes = rows * row_bytes(ty, cols)
        w.add_tensor_info(name, byte_shape, np.dtype(np.uint8), nbytes, raw_dtype=ty)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    fout = w.fout[0]
    rng = np.random.default_rng(seed)
    total = 0
    for name, rows, cols, ty, fan_in in plan:
        w.write_padding(fout, fout.tell())
        n = 0
        for chunk in tensor_chunks(rng, name, rows, cols, ty, fan_in, s, real):
            chunk.tofile(fout)
            n += chunk.nbytes
        assert n == rows * row_bytes(ty, cols), name
        w.write_padding(fout, n)
        total += n
    w.close()
    return plan, total


REFERENCE_TENSORS = ["token_embd.weight", "blk.0.ffn_gate.weight", "blk.1.ffn_down.weight",
                     "output.weight"]


def reference(path):
    """First 64 values gguf-py dequantizes, read back from the written file."""
    r = gguf.GGUFReader(path)
    out = {}
    for t in r.tensors:
        if t.name in REFERENCE_TENSORS:
            per, size = gguf.GGML_QUANT_SIZES[t.tensor_type]
            raw = np.asarray(t.data).view(np.uint8).reshape(-1)[: 64 // per * size if per <= 64 else size]
            vals = gguf.quants.dequantize(raw, t.tensor_type).reshape(-1)[:64]
            out[t.name] = [float(v) for v in vals.astype(np.float32)]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--shape", choices=sorted(SHAPES), default="tiny")
    ap.add_argument("--type", default="Q4_K_M", choices=SINGLE_TYPES + ["Q4_K_M"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--random-blocks", action="store_true",
                    help="random block bytes even where gguf-py could quantize")
    ap.add_argument("--reference", help="also write the dequantized reference JSON here")
    a = ap.parse_args()
    real = not a.random_blocks and SHAPES[a.shape]["vocab"] < 100_000
    plan, total = write(a.out, a.shape, a.type, a.seed, real)
    kinds = {}
    for _, _, _, ty, _ in plan:
        kinds[ty.name] = kinds.get(ty.name, 0) + 1
    print(f"{a.out}: {len(plan)} tensors, {total / 1e6:.1f} MB of tensor data, types {kinds}")
    if a.reference:
        with open(a.reference, "w") as f:
            json.dump(reference(a.out), f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    sys.exit(main())
