#!/usr/bin/env bash
# Screenshots of the architecture lessons on the real models, in English and Chinese: lesson 31
# (Gemma 3's choices) with Gemma 3 270M loaded, its numbers filled in from the model's config;
# its QK-norm button; lesson 32 (GPT-2 and BERT) read on SmolLM2 (the numbers then come from the
# two models' config.json, and the panel says so); lesson 33's first button (SmolLM2 beside
# Gemma 3 270M, both runs); lesson 34 (compute and memory of Llama 3.1 405B). Needs `glassbox fetch` and `glassbox fetch gemma-3-270m`.
#
#   scripts/screenshots-lessons-families.sh [OUT_DIR]        (default: screenshots/)
source "$(dirname "$0")/screenshot-setup.sh"
export GLASSBOX_DEVICE="${GLASSBOX_DEVICE:-cpu}"

# The start both scripts share: window, language, the prompt run.
start_script() {
  mkdir -p "$RAW/$1"
  printf 'size 1600 1000\nlang %s\nprompt The capital of France is\nwait\n' "$1"
}

gemma_script() {
  local d="$RAW/$1"
  start_script "$1"
  cat <<SCRIPT
lesson 31-gemma3-choices
shot $d/43-lesson-31-gemma3-numbers.png
action 1
wait
shot $d/44-lesson-31-qk-norm-on-gemma.png
quit
SCRIPT
}

smollm2_script() {
  local d="$RAW/$1"
  start_script "$1"
  cat <<SCRIPT
lesson 32-gpt2-and-bert
shot $d/45-lesson-32-gpt2-bert-numbers.png
lesson 33-reading-side-by-side
action 0
wait
shot $d/46-lesson-33-side-by-side.png
lesson 34-compute-and-memory
view overview
shot $d/47-lesson-34-compute-and-memory.png
quit
SCRIPT
}

for lang in en zh; do
  GLASSBOX_STATE_FILE="$RAW/state-$lang-gemma.json" GLASSBOX_SCREENSHOT_SCRIPT="$(gemma_script "$lang")" \
    xvfb-run -a -s "-screen 0 1600x1000x24" ./target/release/glassbox --model gemma-3-270m
  GLASSBOX_STATE_FILE="$RAW/state-$lang-smollm2.json" GLASSBOX_SCREENSHOT_SCRIPT="$(smollm2_script "$lang")" \
    xvfb-run -a -s "-screen 0 1600x1000x24" ./target/release/glassbox --model smollm2-135m
  for f in "$RAW/$lang"/*.png; do
    convert "$f" +dither -colors 128 "PNG8:$OUT/$lang-$(basename "$f")"
  done
done
