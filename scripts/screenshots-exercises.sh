#!/usr/bin/env bash
# The exercises at the end of a lesson and the handout, on the real SmolLM2, zh and en: lesson
# 12's questions with their answers shown (the top token and its probability read off the
# pass), lesson 09's after its attention-sink button (the selected head's share on the first
# token), and File → Export handout of lesson 08 in the attention view (Markdown, the figure
# as PNG, the answer sheet apart) into OUT/handout-LANG/.
#
#   scripts/screenshots-exercises.sh [OUT_DIR]        (default: screenshots/)
source "$(dirname "$0")/screenshot-setup.sh"
export GLASSBOX_DEVICE="${GLASSBOX_DEVICE:-cpu}"

exercises_script() {
  local d="$RAW/$1"
  mkdir -p "$d"
  cat <<SCRIPT
size 1600 1000
lang $1
prompt The capital of France is
wait
lesson 12-logits-sampling
action 0
wait
reveal
shot $d/exercises-lesson-12.png
lesson 09-attention-patterns
action 1
wait
reveal
shot $d/exercises-lesson-09.png
lesson 08-scores-mask-softmax
action 2
wait
handout $OUT/handout-$1
wait
quit
SCRIPT
}

for lang in en zh; do
  rm -rf "$OUT/handout-$lang"
  GLASSBOX_STATE_FILE="$RAW/state-$lang.json" GLASSBOX_SCREENSHOT_SCRIPT="$(exercises_script "$lang")" \
    xvfb-run -a -s "-screen 0 1600x1000x24" ./target/release/glassbox --model smollm2-135m
  for f in "$RAW/$lang"/*.png; do
    convert "$f" +dither -colors 128 "PNG8:$OUT/$lang-$(basename "$f")"
  done
done
