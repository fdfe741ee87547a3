#!/usr/bin/env bash
# Weights as downloaded, from the real release binary under Xvfb: SmolLM2's Q4_1 GGUF loaded
# natively (the status bar's weights choice and note), the precision ladder whose first run B
# is the same blocks dequantized to f32, and — when a random Llama-3.1-8B-shaped Q4_K_M GGUF is
# given (scripts/make-random-gguf.py --shape llama-3.1-8b) — that model stepped to block 31's
# attention pattern, with the app's peak memory printed. Needs what scripts/screenshots.sh needs
# (`glassbox fetch` keeps SmolLM2's GGUF beside its converted files).
#
#   scripts/screenshots-as-downloaded.sh [OUT_DIR] [BIG.gguf]     (default: screenshots/)
source "$(dirname "$0")/screenshot-setup.sh"
export GLASSBOX_DEVICE="${GLASSBOX_DEVICE:-cpu}"
BIG="${2:-}"

script_for() {
  local lang="$1" d="$RAW/$1"
  cat <<SCRIPT
size 1600 1000
lang $lang
panels lesson
prompt The capital of France is
wait
lesson 27-precision-side-by-side
action 0
wait
frames 6
shot $d/53-as-downloaded-ladder.png
quit
SCRIPT
}

big_script() {
  local lang="$1" d="$RAW/$1"
  cat <<SCRIPT
size 1600 1000
lang $lang
panels diagram
prompt The capital of France is
wait
goto blocks.31.softmax
frames 6
shot $d/54-as-downloaded-8b-step.png
quit
SCRIPT
}

for lang in en zh; do
  mkdir -p "$RAW/$lang"
  GLASSBOX_WEIGHTS=native GLASSBOX_STATE_FILE="$RAW/state-$lang.json" GLASSBOX_SCREENSHOT_SCRIPT="$(script_for "$lang")" \
    xvfb-run -a -s "-screen 0 1600x1000x24" ./target/release/glassbox
done
if [ -n "$BIG" ]; then
  for lang in en zh; do
    GLASSBOX_MODEL="$BIG" GLASSBOX_STATE_FILE="$RAW/state-big-$lang.json" GLASSBOX_SCREENSHOT_SCRIPT="$(big_script "$lang")" \
      xvfb-run -a -s "-screen 0 1600x1000x24" /usr/bin/time -f "$(basename "$BIG") in the app ($lang): peak RSS %M KiB, %e s" ./target/release/glassbox
  done
fi
for f in "$RAW"/en/*.png "$RAW"/zh/*.png; do
  [ -e "$f" ] || continue
  lang="$(basename "$(dirname "$f")")"
  convert "$f" +dither -colors 128 "PNG8:$OUT/$lang-$(basename "$f")"
done
ls -l "$OUT"/*as-downloaded*
