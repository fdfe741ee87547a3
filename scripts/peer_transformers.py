"""Hugging Face transformers on the same converted SmolLM2 folder, measured the way
`glassbox bench` measures Glassbox: f32, 2 threads, the same 64-token prompt (ids passed in),
medians of repeated runs. Prints one JSON object.

  python peer_transformers.py MODEL_DIR IDS_JSON [--tokens 64,256,1024] [--runs 7] [--what ...]

`hooked` = a forward hook on every module keeping its output, plus output_attentions and
output_hidden_states (eager attention): the closest thing to Glassbox's full capture.
`plain` = the same forward with nothing kept (logits for every position, as Glassbox's
no-capture figure also computes... see the bench's notes). `decode` = greedy tokens/s with
the KV cache (sdpa). `load` = from_pretrained to ready. `rss` = peak RSS of this process
after one load and one hooked 64-token pass (run it in a fresh process for that figure).
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "2")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("ids_json")
    ap.add_argument("--tokens", default="64")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--decode-tokens", type=int, default=32)
    ap.add_argument("--what", default="load,plain,hooked,decode")
    a = ap.parse_args()
    t_import = time.perf_counter()
    import torch
    import transformers

    torch.set_num_threads(2)
    import_s = time.perf_counter() - t_import
    what = a.what.split(",")
    ids64 = json.load(open(a.ids_json))
    out = {"torch": torch.__version__, "transformers": transformers.__version__, "threads": torch.get_num_threads(), "import_s": import_s}

    t0 = time.perf_counter()
    model = transformers.AutoModelForCausalLM.from_pretrained(a.model_dir, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    out["load_ms"] = (time.perf_counter() - t0) * 1e3

    def ids_of(n):
        reps = (n + len(ids64) - 1) // len(ids64)
        return torch.tensor([(ids64 * reps)[:n]])

    kept = {}

    def keep(name):
        def hook(_m, _inp, output):
            kept[name] = output
        return hook

    def run(ids, hooked):
        kept.clear()
        with torch.no_grad():
            if hooked:
                r = model(ids, output_attentions=True, output_hidden_states=True, use_cache=False)
            else:
                r = model(ids, use_cache=False)
        return r

    for n in [int(t) for t in a.tokens.split(",")]:
        ids = ids_of(n)
        for mode in ["plain", "hooked"]:
            if mode not in what:
                continue
            handles = []
            if mode == "hooked":
                handles = [m.register_forward_hook(keep(name)) for name, m in model.named_modules() if name]
            run(ids, mode == "hooked")  # warm-up
            times = []
            for _ in range(a.runs if n <= 256 else max(3, a.runs // 2)):
                t = time.perf_counter()
                r = run(ids, mode == "hooked")
                times.append((time.perf_counter() - t) * 1e3)
                del r
            for h in handles:
                h.remove()
            kept.clear()
            out[f"prefill{n}_{mode}_ms"] = statistics.median(times)
    if "decode" in what:
        model.set_attn_implementation("sdpa")
        ids = ids_of(64)
        rates = []
        for _ in range(a.runs):
            with torch.no_grad():
                r = model(ids, use_cache=True)
                past = r.past_key_values
                nxt = r.logits[:, -1:].argmax(-1)
                t = time.perf_counter()
                for _ in range(a.decode_tokens):
                    r = model(nxt, past_key_values=past, use_cache=True)
                    past = r.past_key_values
                    nxt = r.logits[:, -1:].argmax(-1)
                rates.append(a.decode_tokens / (time.perf_counter() - t))
        out["decode_tokens_per_s"] = statistics.median(rates)
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps(out))


if __name__ == "__main__":
    sys.exit(main())
