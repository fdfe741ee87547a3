#!/usr/bin/env bash
# Screenshots of the figures that name the model's own parts (the diagram's norm and MLP boxes,
# the MLP view's title and formula) on Gemma 3 270M, in English and Chinese, beside SmolLM2's.
# Needs what scripts/screenshots.sh needs plus `glassbox fetch gemma-3-270m`.
#
#   scripts/screenshots-families.sh [OUT_DIR]        (default: screenshots/)
source "$(dirname "$0")/screenshot-setup.sh"
export GLASSBOX_DEVICE="${GLASSBOX_DEVICE:-cpu}"

script_for() {
  local lang="$1" model="$2" mlp_step="$3" d="$RAW/$1"
  mkdir -p "$d"
  cat <<SCRIPT
size 1600 1000
lang $lang
prompt The capital of France is Paris. The capital of Italy is
wait
goto $mlp_step
position 6
shot $d/30-$model-mlp.png
quit
SCRIPT
}

for lang in en zh; do
  for spec in "gemma-3-270m blocks.3.gelu_mul" "smollm2-135m blocks.5.silu_mul"; do
    set -- $spec
    GLASSBOX_STATE_FILE="$RAW/state-$lang-$1.json" GLASSBOX_SCREENSHOT_SCRIPT="$(script_for "$lang" "$1" "$2")" \
      xvfb-run -a -s "-screen 0 1600x1000x24" ./target/release/glassbox --model "$1"
  done
  for f in "$RAW/$lang"/*.png; do
    convert "$f" +dither -colors 128 "PNG8:$OUT/$lang-$(basename "$f")"
  done
done
