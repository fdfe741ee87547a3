#!/usr/bin/env python3
"""Issue 23: GGUFs made by llama.cpp's own converter (`convert_hf_to_gguf.py`) from tiny Qwen 2,
Qwen 3, OLMo 2 and Phi-3 checkpoints, with transformers' logits and token ids on the same folders.

Each checkpoint is random (d_model 8, 2 layers, tied head) with a 400-token byte-level BPE
trained here (`make_gguf_tokenizer_fixtures.trained_byte_level_bpe`, `tokenizer_class`
GPT2Tokenizer, so the converter reads Phi-3's through its GPT-2 path). Every weight is rounded to
f16 first, so `--outtype f16` loses nothing and the GGUF must give transformers' f32 logits.

Writes `tests/fixtures/llamacpp-converted/`:
  {qwen2,qwen3,olmo2,phi3}.gguf  as the converter writes them (f16 matrices, f32 norms);
  golden.safetensors             `{family}.input_ids` [T] (int64) and `{family}.hook_logits`
                                 [T, vocab] from transformers (f32, eager) on the HF folder;
  golden.json                    per family, the text and transformers' `tokenizer(text)` ids.

    LLAMA_CPP=/path/to/llama.cpp SP_PATH=/tmp/s31-sp \
        /work/peers/venv/bin/python scripts/make_llamacpp_converted_fixtures.py

LLAMA_CPP must hold `convert_hf_to_gguf.py` with its `conversion/` package and `gguf-py/` (a
llama.cpp checkout of late 2026; the llama-cpp-sys crate's copy has the script alone).
"""
import json
import os
import subprocess
import sys
import tempfile

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("OMP_NUM_THREADS", "2")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

torch.set_num_threads(2)

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "llamacpp-converted")
LLAMA_CPP = os.environ.get(
    "LLAMA_CPP", "/tmp/pip-install-0coahrru/llama-cpp-python_5225815da2ef48b1b0df4f5ed305c3d4/vendor/llama.cpp")
TEXT = "Hello world! 你好，世界 12345  spaces"
COMMON = dict(vocab_size=400, hidden_size=8, intermediate_size=24, num_hidden_layers=2,
              num_attention_heads=2, num_key_value_heads=1, hidden_act="silu", max_position_embeddings=64,
              tie_word_embeddings=True, bos_token_id=None, eos_token_id=None, pad_token_id=None)


# llama.cpp's converter, run as it is, except for one thing: it refuses a vocabulary whose
# pre-tokenizer hash it does not list, and a tokenizer trained here is in no list. Where its table
# has no answer, the wrapper names the split transformers 5.24 applies to that folder: `qwen2` in
# a Qwen folder (transformers loads it as `Qwen2Tokenizer`, by `model_type`), `gpt-2` elsewhere.
CONVERT = r'''
import runpy, sys
root = sys.argv.pop(1)
sys.path[:0] = [root, root + "/gguf-py"]
import conversion.base as base
for cls in list(vars(base).values()):
    if isinstance(cls, type) and "get_vocab_base_pre" in vars(cls):
        known = cls.get_vocab_base_pre
        def pre(self, tokenizer, known=known):
            try:
                return known(self, tokenizer)
            except NotImplementedError:
                return "qwen2" if type(tokenizer).__name__ == "Qwen2Tokenizer" else "gpt-2"
        cls.get_vocab_base_pre = pre
sys.argv[0] = root + "/convert_hf_to_gguf.py"
runpy.run_path(sys.argv[0], run_name="__main__")
'''


def families():
    return {
        "qwen2": (transformers.Qwen2Config(**COMMON, rms_norm_eps=1e-6, use_sliding_window=False,
                                           rope_parameters={"rope_type": "default", "rope_theta": 1e6}),
                  transformers.Qwen2ForCausalLM),
        "qwen3": (transformers.Qwen3Config(**COMMON, head_dim=6, rms_norm_eps=1e-6, use_sliding_window=False,
                                           rope_parameters={"rope_type": "default", "rope_theta": 1e6}),
                  transformers.Qwen3ForCausalLM),
        "olmo2": (transformers.Olmo2Config(**COMMON, rms_norm_eps=1e-6,
                                           rope_parameters={"rope_type": "default", "rope_theta": 5e5}),
                  transformers.Olmo2ForCausalLM),
        "phi3": (transformers.Phi3Config(**COMMON, rms_norm_eps=1e-5, original_max_position_embeddings=64,
                                         resid_pdrop=0.0, embd_pdrop=0.0, attention_dropout=0.0),
                 transformers.Phi3ForCausalLM),
    }


def randomise(model, seed):
    """Random weights, every one exactly an f16 value."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            n = torch.randn(p.shape, generator=g, dtype=torch.float32)
            if "norm" in name:
                v = 1.0 + 0.1 * n
            elif "embed" in name:
                v = 0.5 * n
            elif p.ndim == 1:
                v = 0.1 * n
            else:
                v = 0.5 * (8.0 / p.shape[1]) ** 0.5 * n
            p.copy_(v.half().float())


def main():
    os.makedirs(OUT, exist_ok=True)
    golden, texts = {}, {}
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from make_gguf_tokenizer_fixtures import trained_byte_level_bpe
    bpe = trained_byte_level_bpe()
    # The converter imports sentencepiece before it looks for tokenizer.model (SP_PATH: where
    # `pip install --target` put it, if not in this venv).
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (os.environ.get("SP_PATH"), os.environ.get("PYTHONPATH")) if p))
    with tempfile.TemporaryDirectory() as work:
        for i, (family, (cfg, cls)) in enumerate(families().items()):
            d = os.path.join(work, family)
            model = cls(cfg)
            randomise(model, 4200 + i)
            model.save_pretrained(d, safe_serialization=True)
            bpe.save(os.path.join(d, "tokenizer.json"))
            with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
                json.dump({"tokenizer_class": "GPT2Tokenizer", "eos_token": "<|endoftext|>", "add_bos_token": False}, f)
            out = os.path.join(OUT, f"{family}.gguf")
            r = subprocess.run([sys.executable, "-c", CONVERT, LLAMA_CPP, d, "--outfile", out, "--outtype", "f16"],
                               capture_output=True, text=True, env=env)
            if r.returncode != 0:
                sys.exit(f"{family}: convert_hf_to_gguf.py failed:\n{r.stderr[-3000:]}")
            model = cls.from_pretrained(d, dtype=torch.float32, attn_implementation="eager").eval()
            tok = transformers.AutoTokenizer.from_pretrained(d)
            ids = tok(TEXT)["input_ids"]
            ids += [int(x) for x in np.random.default_rng(i).integers(0, cfg.vocab_size, 6)]
            with torch.no_grad():
                logits = model(torch.tensor([ids])).logits[0]
            golden[f"{family}.input_ids"] = torch.tensor(ids, dtype=torch.int64)
            golden[f"{family}.hook_logits"] = logits.contiguous()
            texts[family] = {"text": TEXT, "tokenizer": type(tok).__name__, "ids": tok(TEXT)["input_ids"]}
            print(f"{family}: {os.path.getsize(out)} bytes, {len(ids)} ids")
    save_file(golden, os.path.join(OUT, "golden.safetensors"))
    with open(os.path.join(OUT, "golden.json"), "w") as f:
        json.dump(texts, f, ensure_ascii=False, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
