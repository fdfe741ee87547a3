#!/usr/bin/env bash
# Screenshots of the newer families on their tiny fixtures (random weights, prompts as token
# ids), in English and Chinese: the diagram of Qwen 2 (q, k, v biases), Qwen 3 (QK-norm per
# head before RoPE, heads × head_dim ≠ d_model), OLMo 2 (norms after the sublayers only,
# whole-width QK-norm) and Phi-3 (fused qkv_proj and gate_up_proj); and the Side by side
# view with tiny Qwen 3 as A and the tiny OLMo 2 folder as B, both run.
# Needs what scripts/screenshots.sh needs; no download.
#
#   scripts/screenshots-families-recent.sh [OUT_DIR]        (default: screenshots/)
source "$(dirname "$0")/screenshot-setup.sh"
export GLASSBOX_DEVICE="${GLASSBOX_DEVICE:-cpu}"

diagram_script() {
  local lang="$1" name="$2" d="$RAW/$1"
  mkdir -p "$d"
  cat <<SCRIPT
size 1600 1000
lang $lang
prompt 5 17 42 8 33 61 2 90 14 27
wait
goto blocks.0.softmax
view overview
frames 3
shot $d/48-$name-diagram.png
quit
SCRIPT
}

pair_script() {
  local lang="$1" d="$RAW/$1"
  mkdir -p "$d"
  cat <<SCRIPT
size 1600 1000
lang $lang
panels
prompt 5 17 42 8 33 61 2 90 14 27
wait
sidebyside tests/fixtures/tiny-olmo2
wait
frames 5
shot $d/49-side-by-side-tiny-qwen3-vs-olmo2.png
quit
SCRIPT
}

for lang in en zh; do
  for name in tiny-qwen2 tiny-qwen3 tiny-olmo2 tiny-phi3; do
    GLASSBOX_STATE_FILE="$RAW/state-$lang-$name.json" GLASSBOX_SCREENSHOT_SCRIPT="$(diagram_script "$lang" "$name")" \
      xvfb-run -a -s "-screen 0 1600x1000x24" ./target/release/glassbox --model "tests/fixtures/$name"
  done
  GLASSBOX_STATE_FILE="$RAW/state-$lang-pair.json" GLASSBOX_SCREENSHOT_SCRIPT="$(pair_script "$lang")" \
    xvfb-run -a -s "-screen 0 1600x1000x24" ./target/release/glassbox --model tests/fixtures/tiny-qwen3
  for f in "$RAW/$lang"/*.png; do
    convert "$f" +dither -colors 128 "PNG8:$OUT/$lang-$(basename "$f")"
  done
done
