#!/usr/bin/env python3
"""The Gemma 3 270M goldens (../shared/golden/gemma-3-270m) cut to what the tests read, so a
clone carries 4 MB, not 31: everything except the 941-token prompt's two patterns, of which the
last 8 query rows are kept (`p2.blocks.L.attn.hook_pattern_last8`, [heads, 8, T]).

    python3 scripts/gemma-golden-subset.py ../shared/golden/gemma-3-270m tests/fixtures/gemma-3-270m
"""
import json, shutil, struct, sys
from pathlib import Path

import numpy as np

DTYPES = {"F32": np.float32, "I64": np.int64}


def read(path):
    b = path.read_bytes()
    n = struct.unpack("<Q", b[:8])[0]
    header = json.loads(b[8 : 8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        lo, hi = info["data_offsets"]
        out[name] = np.frombuffer(b[8 + n + lo : 8 + n + hi], dtype=DTYPES[info["dtype"]]).reshape(info["shape"])
    return out


def write(path, tensors):
    header, blobs, at = {}, [], 0
    for name, a in tensors.items():
        raw = np.ascontiguousarray(a).tobytes()
        dtype = {np.dtype(np.float32): "F32", np.dtype(np.int64): "I64"}[a.dtype]
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [at, at + len(raw)]}
        blobs.append(raw)
        at += len(raw)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    path.write_bytes(struct.pack("<Q", len(h)) + h + b"".join(blobs))


src, dst = Path(sys.argv[1]), Path(sys.argv[2])
dst.mkdir(parents=True, exist_ok=True)
t = read(src / "golden.safetensors")
kept = {}
for name, a in t.items():
    if name.startswith("p2.") and name.endswith("hook_pattern"):
        kept[name + "_last8"] = a[:, -8:, :]
    else:
        kept[name] = a
write(dst / "golden.safetensors", kept)
for f in ["golden.json", "tokenizer_cases.json"]:
    shutil.copy(src / f, dst / f)
