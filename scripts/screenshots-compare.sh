#!/usr/bin/env bash
# The Training view's Compare recipes page (English and Chinese) from the real release binary
# under Xvfb: a `glassbox train --compare` run's compare.json opened, its curves overlaid and
# its table, then the same page in presenter mode, and the first run's checkpoint opened in
# the attention view. Needs what scripts/screenshots.sh needs
# (the app loads the default model first).
#
# The comparison is trained here, on the `text` preset: `--compare llama,gpt2,bert-mlm`
# where this build has it; else (a build before `--compare`) the one recipe it has, Llama,
# in f32 and in bf16, two real runs written in compare.json's form.
#
#   scripts/screenshots-compare.sh [OUT_DIR]        (default: screenshots/)
source "$(dirname "$0")/screenshot-setup.sh"
export GLASSBOX_DEVICE="${GLASSBOX_DEVICE:-cpu}"
export GLASSBOX_TRAIN_DIR="$RAW/training"
COMP="$RAW/compare"
STEPS=120

if ! ./target/release/glassbox train --compare llama,gpt2,bert-mlm --preset text --steps "$STEPS" --seed 1 \
    --out "$COMP" >"$RAW/compare.log" 2>&1; then
  echo "glassbox train --compare failed (see below); comparing Llama in f32 and bf16 instead" >&2
  tail -3 "$RAW/compare.log" >&2
  mkdir -p "$COMP"
  for p in f32 bf16; do
    ./target/release/glassbox train --preset text --steps "$STEPS" --seed 1 --precision "$p" --eval-every 20 \
      --out "$COMP/llama-$p" --json >"$COMP/llama-$p.json" 2>"$COMP/llama-$p.log"
  done
  python3 - "$COMP" "$STEPS" <<'PY'
import json, re, sys
comp, steps = sys.argv[1], int(sys.argv[2])
runs = []
for p in ["f32", "bf16"]:
    out = json.load(open(f"{comp}/llama-{p}.json"))
    params = int(re.search(r"(\d+) parameters", open(f"{comp}/llama-{p}.log").read()).group(1))
    runs.append({"recipe": f"llama-{p}", "params": params, "loss": out["loss"],
                 "eval": [{"step": e["step"], "loss": e["loss"]} for e in out["eval"]],
                 "steps_per_second": out["steps_per_second"], "checkpoint": f"llama-{p}"})
json.dump({"preset": "text", "seed": 1, "steps": steps, "budget_params": runs[0]["params"], "runs": runs},
          open(f"{comp}/compare.json", "w"))
PY
fi

# The first run's recipe: its checkpoint is opened in the attention view last.
FIRST="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["runs"][0]["recipe"])' "$COMP/compare.json")"

script_for() {
  local lang="$1" d="$RAW/$1"
  cat <<SCRIPT
size 1600 1000
lang $lang
panels lesson
traincompare $COMP/compare.json
frames 4
shot $d/50-training-compare-recipes.png
present on
frames 4
shot $d/51-training-compare-presenter.png
present off
panels
traincompareopen $FIRST
wait
frames 4
shot $d/52-training-compare-checkpoint-attention.png
quit
SCRIPT
}

for lang in en zh; do
  mkdir -p "$RAW/$lang"
  GLASSBOX_STATE_FILE="$RAW/state-$lang.json" GLASSBOX_SCREENSHOT_SCRIPT="$(script_for "$lang")" \
    xvfb-run -a -s "-screen 0 1600x1000x24" ./target/release/glassbox
  for f in "$RAW/$lang"/*.png; do
    convert "$f" +dither -colors 128 "PNG8:$OUT/$lang-$(basename "$f")"
  done
done
ls -l "$OUT"/*training-compare*
