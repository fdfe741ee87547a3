#!/usr/bin/env bash
# The Training view's Compare recipes page (English and Chinese) from the real release binary
# under Xvfb: a `glassbox train --compare` run's compare.json opened, its curves overlaid and
# its table, then the same page in presenter mode, and the first run's checkpoint opened in
# the attention view. Needs what scripts/screenshots.sh needs
# (the app loads the default model first).
#
# The comparison is trained here: `--compare llama,gpt2,bert-mlm` on the `text` preset.
#
#   scripts/screenshots-compare.sh [OUT_DIR]        (default: screenshots/)
source "$(dirname "$0")/screenshot-setup.sh"
export GLASSBOX_DEVICE="${GLASSBOX_DEVICE:-cpu}"
export GLASSBOX_TRAIN_DIR="$RAW/training"
COMP="$RAW/compare"
STEPS=120

./target/release/glassbox train --compare llama,gpt2,bert-mlm --preset text --steps "$STEPS" --seed 1 \
  --out "$COMP" >"$RAW/compare.log" 2>&1 || { tail -3 "$RAW/compare.log" >&2; exit 1; }

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
