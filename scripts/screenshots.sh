#!/usr/bin/env bash
# Screenshots of the main views, in English and Chinese, from the real release binary under
# Xvfb (no GPU needed: wgpu uses lavapipe). Needs xvfb, xauth, imagemagick,
# mesa-vulkan-drivers, and the default model in the cache (`glassbox fetch`).
#
#   scripts/screenshots.sh [OUT_DIR]        (default: screenshots/)
#
# Then runs every other screenshot script into the same folder, so one run remakes every
# committed figure in both languages (`gui::tests::screenshots_check` checks the committed
# set is what the scripts make).
#
# The app is driven by GLASSBOX_SCREENSHOT_SCRIPT (commands listed in
# app/src/gui/screenshot.rs); each `shot` saves a PNG, which is then palette-reduced so the
# committed files stay small.
source "$(dirname "$0")/screenshot-setup.sh"
# A private figure folder (and state file per run, below): the user's settings stay untouched.
export GLASSBOX_EXPORT_DIR="$RAW/figures"
# The CPU reference by default: quick and exact under Xvfb, where the GPU is lavapipe.
export GLASSBOX_DEVICE="${GLASSBOX_DEVICE:-cpu}"

PROMPT="The capital of France is Paris. The capital of Italy is Rome. The capital of Spain is"

script_for() {
  local lang="$1" d="$RAW/$1"
  cat <<SCRIPT
size 1600 1000
lang $lang
prompt $PROMPT
wait
lesson 01-overview
goto embed
view overview
shot $d/01-model.png
lesson 02-tokens
view tokens
position 7
shot $d/02-tokens.png
action 2
wait
shot $d/02b-tokens-chinese-bytes.png
action 3
wait
shot $d/02c-tokens-emoji.png
prompt $PROMPT
wait
goto embed
shot $d/03-embedding.png
goto blocks.0.ln1
shot $d/04-rmsnorm.png
lesson 07-rope
goto blocks.2.rope
head 4
position 9
shot $d/05-qkv-rope.png
lesson 08-scores-mask-softmax
goto blocks.3.softmax
attn head
head 5
position 14
key 3
shot $d/06-attention-head.png
export
frames 3
attn layer
shot $d/07-attention-layer.png
attn overview
shot $d/08-attention-overview.png
lesson 09-attention-patterns
attn lines
goto blocks.1.softmax
position 17
shot $d/09-attention-lines.png
attn head
goto blocks.5.silu_mul
position 17
shot $d/10-mlp.png
lesson 11-residual-stream
goto blocks.7.mlp_add
residual norms
shot $d/11-residual-norms.png
residual writes
shot $d/12-residual-writes.png
goto blocks.29.mlp_add
residual lens
wait
frames 6
shot $d/13-logit-lens.png
lesson 12-logits-sampling
goto sample
position 18
temperature 0.7
shot $d/14-output.png
generate 8
wait
goto sample
shot $d/15-generate.png
lesson 17-four-uses
task sentiment I have worn this smartwatch for two weeks. The battery easily lasts five days and the heart-rate sensor is accurate, but the strap feels cheap.
wait
view tasks
shot $d/16-tasks.png
lesson 10-swiglu
prompt $PROMPT
wait
action 5
wait
shot $d/18-relu-vs-silu.png
lesson 04-rmsnorm
action 4
wait
shot $d/19-layernorm-vs-rmsnorm.png
lesson 14-training-objective
action 4
wait
augment delete
wait
frames 4
shot $d/20-data-augmentation.png
action 5
shot $d/21-training-loop.png
lesson 13-generation-kv-cache
action 4
wait
action 5
wait
frames 4
shot $d/22-graph-kv-cache.png
lesson 17-four-uses
action 9
task sentiment 某科技公司股价大幅上涨,市场反应积极。
wait
mode code
frames 4
shot $d/23-tasks-article-examples.png
lesson 01-overview
action 4
shot $d/24-smollm2-vs-llama31.png
SCRIPT
  cat <<SCRIPT
dark on
zoom 1.4
panels lesson
prompt The capital of France is
wait
lesson 08-scores-mask-softmax
goto blocks.3.softmax
attn head
head 5
position 4
key 0
shot $d/17-dark-projector-zoom.png
SCRIPT
  echo quit
}

XVFB_SCREEN="1600x1000x24"
for lang in en zh; do
  mkdir -p "$RAW/$lang"
  GLASSBOX_STATE_FILE="$RAW/state-$lang.json" GLASSBOX_SCREENSHOT_SCRIPT="$(script_for "$lang")" \
    xvfb-run -a -s "-screen 0 $XVFB_SCREEN" ./target/release/glassbox
  for f in "$RAW/$lang"/*.png; do
    # A 128-color palette: exact enough for UI shots, and small enough to commit.
    convert "$f" +dither -colors 128 "PNG8:$OUT/$lang-$(basename "$f")"
  done
  # The figure File → Export wrote (plotters, bundled font) for the attention head.
  fig="$(ls -t "$GLASSBOX_EXPORT_DIR"/*.png | head -1)"
  convert "$fig" +dither -colors 128 "PNG8:$OUT/$lang-export-attention-head.png"
done

# Every other figure, in both languages: presenter mode and the projector (1280×720), families, Gemma and the side-by-side view, the
# picker, the lessons on other models, training and recipes compared, experiments, the 8,192-token prompt.
# GLASSBOX_SHOTS_MAIN_ONLY=1 stops after the views above.
if [ -z "${GLASSBOX_SHOTS_MAIN_ONLY:-}" ]; then
  for s in presenter families families-recent side-by-side picker lessons-families training compare experiments exercises workshop as-downloaded; do
    echo "== screenshots-$s.sh"
    scripts/screenshots-$s.sh "$OUT"
  done
  echo "== long-prompt.sh"
  scripts/long-prompt.sh "$OUT"
fi
ls -l "$OUT"
