"""llama.cpp (through llama-cpp-python) on a GGUF file as it was downloaded, measured the way
`glassbox bench` and `peer_transformers.py` measure: 2 threads, the same token ids passed in,
medians over rounds. Prints one JSON object (and writes it to --json OUT if given).

  python peer_llamacpp.py MODEL.gguf IDS [--threads 2] [--runs 5] [--decode-tokens 32]
                          [--tokens 64] [--what load,plain,decode] [--json OUT]
                          [--logits OUT.npy] [--logits-all]

Runs in its own venv (`/work/peers/llamacpp-venv`, llama-cpp-python built from source without
-march=native). `--model` / `--ids` / `--rounds` / `--decode` are accepted as synonyms of the
positional arguments, `--runs` and `--decode-tokens`. IDS: comma-separated ids, or a file
holding a JSON list or comma-separated ids (the 64 ids of the benchmark prompt; longer
`--tokens` repeat them, as the other peers do).

`plain` = prefill of the ids from an empty KV cache (cleared before every round), logits for the
last position only (all positions with --logits-all). `decode` = greedy tokens/s: after a
prefill of the first 64 ids, `--decode-tokens` single-token steps, each the argmax of the last
logits (no sampler), timed without the prefill. Every round records its 1-minute load average,
and decode rounds their greedy ids. `load` = Llama(...) to ready, `peak_rss_mib` as in
peer_transformers. `--logits OUT.npy` saves the last position's logits (float32, vocabulary
long) after a prefill of 64 ids (fewer ids are repeated to 64, as for `--tokens`), for top-1
comparisons. `--what none` with `--logits` only loads, prefills once and saves them.
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

# llama.cpp's threads wait at every op's barrier; spinning there (OpenMP's ACTIVE policy) is
# fastest on idle cores but 3-4x slower on a shared, oversubscribed machine (measured here:
# SmolLM2 prefill 64 at load 7 on 2 cores, 4.1 s ACTIVE vs 1.1 s PASSIVE). Threads that
# sleep are the fair comparison there; set OMP_WAIT_POLICY=ACTIVE to measure llama.cpp's default on an idle machine.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def parse_ids(text):
    if os.path.exists(text):
        text = open(text).read()
    text = text.strip()
    ids = json.loads(text) if text.startswith("[") else [int(t) for t in text.split(",") if t.strip()]
    if not ids or not all(isinstance(i, int) and i >= 0 for i in ids):
        raise SystemExit(f"--ids: expected non-negative token ids, got {text[:80]!r}")
    return ids


def args():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_pos", nargs="?", metavar="MODEL.gguf")
    ap.add_argument("ids_pos", nargs="?", metavar="IDS")
    ap.add_argument("--model")
    ap.add_argument("--ids")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tokens", default="64")
    ap.add_argument("--runs", "--rounds", dest="runs", type=int, default=5)
    ap.add_argument("--decode-tokens", "--decode", dest="decode_tokens", type=int, default=32)
    ap.add_argument("--what", default="load,plain,decode")
    ap.add_argument("--n-batch", type=int, default=512)
    ap.add_argument("--logits-all", action="store_true")
    ap.add_argument("--logits", help="save the last position's logits after the 64-id prefill")
    ap.add_argument("--json", dest="json_out")
    a = ap.parse_args()
    a.model = a.model or a.model_pos
    a.ids = a.ids or a.ids_pos
    if not a.model or not a.ids:
        ap.error("give the model (MODEL.gguf or --model) and the ids (IDS or --ids)")
    return a


def main():
    a = args()
    ids64 = parse_ids(a.ids)
    what = a.what.split(",")
    lengths = [int(t) for t in a.tokens.split(",")]
    t_import = time.perf_counter()
    import numpy as np
    import llama_cpp

    import_s = time.perf_counter() - t_import
    out = {"llama_cpp_python": llama_cpp.__version__, "threads": a.threads, "import_s": import_s,
           "model": os.path.abspath(a.model), "ids": len(ids64),
           "omp_wait_policy": os.environ["OMP_WAIT_POLICY"]}
    n_ctx = max(lengths + [len(ids64[:64]) + a.decode_tokens]) + 8
    t0 = time.perf_counter()
    llm = llama_cpp.Llama(model_path=a.model, n_threads=a.threads, n_threads_batch=a.threads,
                          n_ctx=n_ctx, n_batch=max(a.n_batch, 64), n_ubatch=max(a.n_batch, 64),
                          logits_all=a.logits_all, verbose=False)
    out["load_ms"] = (time.perf_counter() - t0) * 1e3
    n_vocab = llm.n_vocab()
    out["n_vocab"] = n_vocab
    out["system_info"] = llama_cpp.llama_print_system_info().decode(errors="replace")

    def last_logits():
        ptr = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
        return np.ctypeslib.as_array(ptr, shape=(n_vocab,)).copy()

    def prefill(ids):
        llm.reset()  # n_tokens = 0: the next eval drops every cached position first
        llm.eval(ids)

    def ids_of(n):
        reps = (n + len(ids64) - 1) // len(ids64)
        return (ids64 * reps)[:n]

    rounds = []
    if "plain" in what:
        for n in lengths:
            ids = ids_of(n)
            prefill(ids)  # warm-up
            times = []
            for _ in range(a.runs):
                load = os.getloadavg()[0]
                t = time.perf_counter()
                prefill(ids)
                ms = (time.perf_counter() - t) * 1e3
                times.append(ms)
                rounds.append({"what": f"prefill{n}", "ms": ms, "loadavg_1m": load})
            out[f"prefill{n}_plain_ms"] = statistics.median(times)
    if a.logits:
        prefill(ids_of(64))
        np.save(a.logits, last_logits().astype(np.float32))
        out["logits_file"] = os.path.abspath(a.logits)
    if "decode" in what:
        rates, greedy = [], None
        ids = ids_of(64)
        for _ in range(a.runs):
            load = os.getloadavg()[0]
            prefill(ids)
            nxt = int(last_logits().argmax())
            got = [nxt]
            t = time.perf_counter()
            for _ in range(a.decode_tokens):
                llm.eval([nxt])
                nxt = int(last_logits().argmax())
                got.append(nxt)
            rate = a.decode_tokens / (time.perf_counter() - t)
            rates.append(rate)
            rounds.append({"what": "decode", "tokens_per_s": rate, "loadavg_1m": load, "greedy_ids": got})
            if greedy is not None and got != greedy:
                out["greedy_ids_differ_between_rounds"] = True
            greedy = greedy or got
        out["decode_tokens_per_s"] = statistics.median(rates)
        # The first is the prefill's argmax; then one per decode step (the last is not fed back).
        out["greedy_ids"] = greedy
    out["rounds"] = rounds
    out["loadavg_1m_median"] = statistics.median(r["loadavg_1m"] for r in rounds) if rounds else None
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    text = json.dumps(out)
    if a.json_out:
        with open(a.json_out, "w") as f:
            f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    sys.exit(main())
