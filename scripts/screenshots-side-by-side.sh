#!/usr/bin/env bash
# Screenshots of the Side by side view: SmolLM2-135M (the app's model) against Gemma 3 270M,
# one prompt run in both, in English and Chinese.
# Needs what scripts/screenshots.sh needs plus `glassbox fetch gemma-3-270m`.
#
#   scripts/screenshots-side-by-side.sh [OUT_DIR]        (default: screenshots/)
source "$(dirname "$0")/screenshot-setup.sh"
export GLASSBOX_DEVICE="${GLASSBOX_DEVICE:-cpu}"

script_for() {
  local lang="$1" d="$RAW/$1"
  mkdir -p "$d"
  cat <<SCRIPT
size 1600 1000
lang $lang
panels
prompt The capital of France is
wait
sidebyside gemma
wait
frames 5
shot $d/31-side-by-side-smollm2-vs-gemma.png
sidebysideruns
frames 5
shot $d/31b-side-by-side-runs.png
quit
SCRIPT
}

for lang in en zh; do
  GLASSBOX_STATE_FILE="$RAW/state-$lang.json" GLASSBOX_SCREENSHOT_SCRIPT="$(script_for "$lang")" \
    xvfb-run -a -s "-screen 0 1600x1000x24" ./target/release/glassbox --model smollm2-135m
  for f in "$RAW/$lang"/*.png; do
    convert "$f" +dither -colors 128 "PNG8:$OUT/$lang-$(basename "$f")"
  done
done
