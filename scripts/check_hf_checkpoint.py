#!/usr/bin/env python3
"""Issue 20: a folder written by Glassbox's `save_checkpoint` (training checkpoints, for every
family) opened by transformers itself.

Loads DIR with the class its config.json names (`BertForMaskedLM`, else
`AutoModelForCausalLM`: GPT-2, Gemma 3, Llama, Qwen 2/3, OLMo 2, Phi-3), f32, eager attention,
and with `strict` key checking: every tensor transformers expects must be in the file and none
left over (a missing tensor would otherwise be initialized at random, silently). With GOLDEN
(a fixture's `golden.safetensors`) it runs the golden's `input_ids` and prints
max|logits − hook_logits|; bound 1e-4. Without GOLDEN it only loads and runs a few ids.

    /work/peers/venv/bin/python scripts/check_hf_checkpoint.py DIR [GOLDEN]
    /work/peers/venv/bin/python scripts/check_hf_checkpoint.py DIR LOGITS.npz IDS

The second form checks a checkpoint Glassbox trained against Glassbox's own logits of the
same folder: `glassbox export --model DIR --token-ids IDS --hooks hook_logits --out LOGITS.npz`.

A folder to check: the tests crate writes each tiny fixture's checkpoint into
$GLASSBOX_EXPORT_DIR/<fixture> when that is set:

    GLASSBOX_EXPORT_DIR=/tmp/hf-export cargo test --release -p glassbox-tests --test hf_export
    /work/peers/venv/bin/python scripts/check_hf_checkpoint.py /tmp/hf-export/tiny-gpt2 \
        tests/fixtures/tiny-gpt2/golden.safetensors

Exits 1 if loading reports missing/unexpected tensors or the logits are off, 0 otherwise.
"""
import json
import os
import sys

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

BOUND = 1e-4


def load(folder):
    with open(os.path.join(folder, "config.json")) as f:
        config = json.load(f)
    classes = config.get("architectures") or []
    cls = transformers.BertForMaskedLM if "BertForMaskedLM" in classes else transformers.AutoModelForCausalLM
    model, info = cls.from_pretrained(
        folder, dtype=torch.float32, attn_implementation="eager", output_loading_info=True
    )
    return model.eval(), info, classes


def main():
    if len(sys.argv) not in (2, 3, 4):
        print(__doc__)
        return 2
    folder = sys.argv[1]
    model, info, classes = load(folder)
    problems = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    print(f"{folder}: {type(model).__name__} (config says {classes}), transformers {transformers.__version__}")
    for kind, keys in problems.items():
        print(f"  {kind}: {sorted(keys)}")
    if len(sys.argv) == 4:
        import numpy as np

        golden = {"hook_logits": torch.from_numpy(np.load(sys.argv[2])["hook_logits"])}
        ids = torch.tensor([[int(i) for i in sys.argv[3].split(",")]])
    elif len(sys.argv) == 3:
        golden = load_file(sys.argv[2])
        ids = golden["input_ids"].to(torch.long).unsqueeze(0)
    else:
        golden, ids = None, torch.arange(min(8, model.config.vocab_size)).unsqueeze(0)
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0]
    ok = not problems and bool(torch.isfinite(logits).all())
    if golden is not None:
        ref = golden["hook_logits"]
        err = (logits - ref).abs().max().item()
        print(f"  max |logits − hook_logits| = {err:.3e} over {tuple(ref.shape)} (bound {BOUND:g}), max |ref| = {ref.abs().max().item():.3f}")
        ok = ok and err <= BOUND
    print("  OK" if ok else "  FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
