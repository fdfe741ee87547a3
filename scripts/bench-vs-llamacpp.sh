#!/usr/bin/env bash
# Glassbox (weights as downloaded) and llama.cpp side by side on one GGUF, in interleaved
# rounds on the same machine: prefill of the benchmark's 64 token ids, greedy decode tokens/s,
# and the 32 greedy ids of each. Both use 2 threads.
# Prefill is compared like with like: llama.cpp by default computes the logits of the last
# position only, as Glassbox does with nothing captured ("last"). Glassbox's figures with every
# position's logits kept ("all rows", the LM head on 64 rows: Gemma 3's is 262,144 × 640) and
# with every hook captured are printed beside it; LOGITS_ALL=1 runs llama.cpp with
# logits_all too, to compare those.
# Each round records the 1-minute load average; the summary gives per-round figures, medians
# and the ratios Glassbox / llama.cpp.
#
#   scripts/bench-vs-llamacpp.sh MODEL.gguf [ROUNDS] [OUT_DIR]
#
# GLASSBOX (default target/release/glassbox) and PEER_PYTHON (default
# /work/peers/llamacpp-venv/bin/python, a venv with llama-cpp-python built from source) say
# which programs run. RUNS (default 3) repetitions per figure inside a round.
set -euo pipefail
model="${1:?usage: scripts/bench-vs-llamacpp.sh MODEL.gguf [ROUNDS] [OUT_DIR]}"
rounds="${2:-3}"
out="${3:-$(mktemp -d /tmp/glassbox-vs-llamacpp.XXXXXX)}"
here="$(cd "$(dirname "$0")" && pwd)"
glassbox="${GLASSBOX:-$here/../target/release/glassbox}"
peer="${PEER_PYTHON:-/work/peers/llamacpp-venv/bin/python}"
runs="${RUNS:-3}"
mkdir -p "$out"
for r in $(seq 1 "$rounds"); do
  "$glassbox" bench --model "$model" --weights native --tokens 64 --runs "$runs" --json >"$out/glassbox-$r.json"
  ids="$(python3 -c 'import json,sys; print(",".join(map(str, json.load(open(sys.argv[1]))["prompt_ids"])))' "$out/glassbox-$r.json")"
  "$peer" "$here/peer_llamacpp.py" "$model" "$ids" --threads 2 --runs "$runs" --decode-tokens 32 --json "$out/llamacpp-$r.json" >/dev/null
  if [ "${LOGITS_ALL:-0}" = 1 ]; then
    "$peer" "$here/peer_llamacpp.py" "$model" "$ids" --threads 2 --runs "$runs" --decode-tokens 1 --logits-all --json "$out/llamacpp-all-$r.json" >/dev/null
  fi
  echo "round $r of $rounds done (load average $(cut -d' ' -f1 /proc/loadavg))" >&2
done
python3 - "$out" "$rounds" <<'PY'
import json, os, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
rows = []
for r in range(1, rounds + 1):
    g = json.load(open(f"{out}/glassbox-{r}.json"))
    p = json.load(open(f"{out}/llamacpp-{r}.json"))
    gr = g["result"]
    rows.append({
        "round": r,
        "load_avg": (g["load_average_1min"]["before"], p.get("loadavg_1m_median")),
        "gb_prefill_ms": gr["prefill64_last_logits_ms"], "gb_prefill_all_ms": gr["prefill64_no_capture_ms"],
        "gb_prefill_capture_ms": gr["prefill64_full_capture_ms"],
        "lc_prefill_ms": p["prefill64_plain_ms"],
        "lc_prefill_all_ms": json.load(open(f"{out}/llamacpp-all-{r}.json"))["prefill64_plain_ms"] if os.path.exists(f"{out}/llamacpp-all-{r}.json") else float("nan"),
        "gb_decode": gr["decode_tokens_per_s"], "lc_decode": p["decode_tokens_per_s"],
        "gb_greedy": gr.get("greedy_ids"), "lc_greedy": p.get("greedy_ids"),
    })
print(f"{'round':>5} {'load':>10} {'prefill64 last-row logits ms (gb / llama.cpp)':>46} {'all rows (gb / llama.cpp)':>26} {'gb capture':>11} {'decode tok/s (gb / llama.cpp)':>31}")
for x in rows:
    la = "/".join(f"{v:.1f}" if isinstance(v, (int, float)) else "?" for v in x["load_avg"])
    print(f"{x['round']:>5} {la:>10} {x['gb_prefill_ms']:>35.1f} / {x['lc_prefill_ms']:>8.1f} {x['gb_prefill_all_ms']:>15.1f} / {x['lc_prefill_all_ms']:>8.1f} {x['gb_prefill_capture_ms']:>11.1f} {x['gb_decode']:>20.1f} / {x['lc_decode']:>8.1f}")
med = lambda k: statistics.median(x[k] for x in rows)
summary = {
    "rounds": rows,
    "median": {k: med(k) for k in ["gb_prefill_ms", "gb_prefill_all_ms", "gb_prefill_capture_ms", "lc_prefill_ms", "lc_prefill_all_ms", "gb_decode", "lc_decode"]},
}
m = summary["median"]
summary["ratios"] = {
    "decode_glassbox_over_llamacpp": m["gb_decode"] / m["lc_decode"],
    "prefill_llamacpp_over_glassbox": m["lc_prefill_ms"] / m["gb_prefill_ms"],
    "prefill_all_rows_llamacpp_over_glassbox": m["lc_prefill_all_ms"] / m["gb_prefill_all_ms"],
    # Full capture keeps every position's logits, so its cost is measured against the pass
    # that keeps them too.
    "capture_cost": m["gb_prefill_capture_ms"] / m["gb_prefill_all_ms"] - 1,
}
g, l = rows[-1]["gb_greedy"], rows[-1]["lc_greedy"]
if g and l:
    same = next((i for i, (a, b) in enumerate(zip(g, l)) if a != b), min(len(g), len(l)))
    summary["greedy"] = {"glassbox": g, "llamacpp": l, "same_prefix": same}
print(f"medians: prefill64, last-row logits, {m['gb_prefill_ms']:.1f} ms vs llama.cpp {m['lc_prefill_ms']:.1f} ms; "
      f"all rows {m['gb_prefill_all_ms']:.1f} vs {m['lc_prefill_all_ms']:.1f} ms; full capture {m['gb_prefill_capture_ms']:.1f} ms "
      f"(+{100 * summary['ratios']['capture_cost']:.0f} % over all rows, +{100 * (m['gb_prefill_capture_ms'] / m['gb_prefill_ms'] - 1):.0f} % over last row); "
      f"decode {m['gb_decode']:.1f} vs {m['lc_decode']:.1f} tok/s ({summary['ratios']['decode_glassbox_over_llamacpp']:.2f}x)")
if "greedy" in summary:
    print(f"greedy ids: the first {summary['greedy']['same_prefix']} of {len(g)} agree")
json.dump(summary, open(f"{out}/summary.json", "w"), indent=1)
print(f"written {out}/summary.json")
PY
