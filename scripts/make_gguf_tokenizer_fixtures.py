#!/usr/bin/env python3
"""Issue 23: GGUF tokenizers of OLMo 2 and Phi-3, with the ids transformers 5.24 gives for them.

Writes `tests/fixtures/gguf-tokenizers/`:
  olmo2-dbrx.gguf  a byte-level BPE (`tokenizer.ggml.model = gpt2`) trained here with the
                   `tokenizers` package, `tokenizer.ggml.pre = dbrx` (what llama.cpp's converter
                   writes for OLMo 2's cl100k-style tokenizer), one control token;
  olmo-gpt2.gguf   the same vocabulary with `pre = olmo` (OLMo 1.7's name: GPT-2's split);
  phi3-spm.gguf    a SentencePiece-style vocabulary (`tokenizer.ggml.model = llama`) written as
                   llama.cpp's Phi-3 converter writes one: `<unk>`, `<s>`, `</s>`, 256 byte
                   tokens, pieces with `▁` and log-prob scores, a control `<|end|>` and a
                   user-defined `<|placeholder1|>`; no merges (transformers derives them);
  golden.json      per file, per text: the ids of transformers' GGUF tokenizer
                   (`add_special_tokens=True`, as `tokenizer(text)` gives them):
                   `AutoTokenizer.from_pretrained(dir, gguf_file=…)` for Phi-3; transformers 5.24
                   loads no `olmo2` GGUF, so for OLMo 2 the same builder it would run
                   (`integrations/gguf/gguf_tokenizer_mapping.py`: `get_gguf_tokenizer`,
                   `convert_gguf_tokenizer`), called directly.

The GGUFs hold metadata only (no tensors): a tokenizer is all they are for.

    /work/peers/venv/bin/python scripts/make_gguf_tokenizer_fixtures.py
"""
import json
import os

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import gguf  # noqa: E402
from tokenizers import Tokenizer, models, pre_tokenizers, trainers  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402
from transformers.integrations.gguf.gguf_tokenizer_mapping import convert_gguf_tokenizer, get_gguf_tokenizer  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "gguf-tokenizers")

CORPUS = [
    "Hello world, the quick brown fox jumps over the lazy dog.",
    "I'm sure they'll say it's fine, but we've seen what you'd do.",
    "数字 12345 和 3.14159；你好，世界！今天天气很好。",
    "    indented code:\n\tdef f(x):\n\t\treturn x * 2  # twice\n",
    "Numbers 2024-12-07, 1,000,000 and 007 agents.",
]

TEXTS = [
    "Hello world",
    "  two leading spaces, and   a run",
    "数字 12345 和 3.14",
    "你好，世界！",
    "<|endoftext|>after a control token",
    "tabs\tand\nnew\n\nlines",
    "I'm sure they'll",
    "<|end|><|placeholder1|> mixed",
    "",
]


def write(path, arch, tokens, types, model, pre=None, merges=None, scores=None, bos=None, eos=None, unk=None, add_bos=None):
    w = gguf.GGUFWriter(path, arch)
    w.add_tokenizer_model(model)
    if pre is not None:
        w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types(types)
    if scores is not None:
        w.add_token_scores(scores)
    if merges is not None:
        w.add_token_merges(merges)
    for value, add in ((bos, w.add_bos_token_id), (eos, w.add_eos_token_id), (unk, w.add_unk_token_id)):
        if value is not None:
            add(value)
    if add_bos is not None:
        w.add_add_bos_token(add_bos)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def trained_byte_level_bpe():
    """A 400-token byte-level BPE (GPT-2's split) trained on CORPUS."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS * 4, trainer)
    return tok


def byte_level():
    data = json.loads(trained_byte_level_bpe().to_str())
    vocab = data["model"]["vocab"]
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    merges = [m if isinstance(m, str) else " ".join(m) for m in data["model"]["merges"]]
    types = [gguf.TokenType.CONTROL if t == "<|endoftext|>" else gguf.TokenType.NORMAL for t in tokens]
    return tokens, types, merges, tokens.index("<|endoftext|>")


def sentencepiece_like():
    """A vocabulary as llama.cpp's Phi-3 `set_vocab` lays one out from `tokenizer.model`."""
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL] + [gguf.TokenType.BYTE] * 256
    scores = [0.0] * len(tokens)
    pieces = ["▁", "e", "t", "o", "l", "h", "r", "n", "s", "a", "i", "d", "w", "c", "m", "u", "p", "y",
              "f", "x", "k", "g", "b", "v", "H", "I", "'", ",", ".", "!", "1", "2", "3", "4", "5",
              "数", "字", "和", "你", "好", "世", "界", "，", "！", "▁▁", "▁t", "he", "▁the", "ll",
              "▁w", "or", "ld", "▁wor", "▁world", "He", "llo", "Hello", "▁a", "▁s", "▁r", "un",
              "▁run", "in", "ing", "▁le", "ad", "▁lead", "▁two", "▁and", "er", "▁sp", "ace", "s",
              "12", "123", "▁1", "▁12", "3.", "14", "你好", "世界", "▁数字", "数字", "▁和", "▁m",
              "ix", "ed", "▁mix", "▁mixed", "▁▁▁", "▁I", "'m", "▁sure", "▁they", "'ll", "ta", "bs"]
    seen = set(tokens)
    for i, p in enumerate(pieces):
        if p in seen:
            continue
        seen.add(p)
        tokens.append(p)
        types.append(gguf.TokenType.NORMAL)
        scores.append(-float(i) - (0.5 if len(p) > 2 else 0.0))
    for t, ty in (("<|end|>", gguf.TokenType.CONTROL), ("<|placeholder1|>", gguf.TokenType.USER_DEFINED)):
        tokens.append(t)
        types.append(ty)
        scores.append(-1000.0)
    return tokens, types, scores


def main():
    os.makedirs(OUT, exist_ok=True)
    tokens, types, merges, eot = byte_level()
    files = {
        "olmo2-dbrx.gguf": lambda p: write(p, "olmo2", tokens, types, "gpt2", pre="dbrx", merges=merges, eos=eot),
        "olmo-gpt2.gguf": lambda p: write(p, "olmo2", tokens, types, "gpt2", pre="olmo", merges=merges, eos=eot),
    }
    sp_tokens, sp_types, sp_scores = sentencepiece_like()
    files["phi3-spm.gguf"] = lambda p: write(p, "phi3", sp_tokens, sp_types, "llama", pre="default", scores=sp_scores,
                                              bos=1, eos=sp_tokens.index("<|end|>"), unk=0, add_bos=False)
    golden = {}
    for name, make in files.items():
        path = os.path.join(OUT, name)
        make(path)
        if name.startswith("phi3"):
            tok = AutoTokenizer.from_pretrained(OUT, gguf_file=name)
            encode = lambda t: tok(t)["input_ids"]  # noqa: E731
        else:
            arch, tdict, _ = get_gguf_tokenizer(path)
            backend, _ = convert_gguf_tokenizer(arch, tdict)
            encode = lambda t: backend.encode(t, add_special_tokens=True).ids  # noqa: E731
        golden[name] = [{"text": t, "ids": encode(t)} for t in TEXTS]
        print(name, os.path.getsize(path), "bytes;", [len(g["ids"]) for g in golden[name]])
    with open(os.path.join(OUT, "golden.json"), "w") as f:
        json.dump(golden, f, ensure_ascii=False, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
