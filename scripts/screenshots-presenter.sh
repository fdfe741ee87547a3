#!/usr/bin/env bash
# Presenter mode on a 1280×720 projector (zoom 1), in English and Chinese, from the real
# release binary under Xvfb: attention (one head), the logit lens, an experiment (the head
# catalog) and training (curves after some steps); and the normal layout at 150 % zoom on
# the Model view. Needs what scripts/screenshots.sh needs; scripts/screenshots.sh runs it.
#
#   scripts/screenshots-presenter.sh [OUT_DIR]        (default: screenshots/)
source "$(dirname "$0")/screenshot-setup.sh"
export GLASSBOX_EXPORT_DIR="$RAW/figures"
export GLASSBOX_DEVICE="${GLASSBOX_DEVICE:-cpu}"
export GLASSBOX_TRAIN_DIR="$RAW/training"

PROMPT="The capital of France is Paris. The capital of Italy is Rome. The capital of Spain is"

present_for() {
  local lang="$1" d="$RAW/$1"
  cat <<SCRIPT
size 1280 720
lang $lang
zoom 1.5
prompt $PROMPT
wait
lesson 11-residual-stream
view overview
shot $d/25-projector-1280-model-view.png
zoom 1
lesson 08-scores-mask-softmax
goto blocks.3.softmax
attn head
head 5
position 14
present on
frames 4
shot $d/26-presenter-1280-attention.png
goto blocks.29.mlp_add
residual lens
wait
frames 6
shot $d/27-presenter-1280-logit-lens.png
present off
lesson 25-induction-heads
action 0
wait
present on
frames 6
shot $d/28-presenter-1280-head-catalog.png
train induction 120
wait
traintab curves
frames 6
shot $d/29-presenter-1280-training.png
quit
SCRIPT
}

for lang in en zh; do
  mkdir -p "$RAW/$lang"
  GLASSBOX_STATE_FILE="$RAW/state-present-$lang.json" GLASSBOX_SCREENSHOT_SCRIPT="$(present_for "$lang")" \
    xvfb-run -a -s "-screen 0 1280x720x24" ./target/release/glassbox
  for f in "$RAW/$lang"/*.png; do
    # A 128-color palette: exact enough for UI shots, and small enough to commit.
    convert "$f" +dither -colors 128 "PNG8:$OUT/$lang-$(basename "$f")"
  done
done
ls -l "$OUT"/*-2[5-9]-*
