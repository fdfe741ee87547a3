#!/usr/bin/env bash
# Screenshots of the Training view (English and Chinese) from the real release binary under
# Xvfb: the induction run before and after its phase change, one training step laid open, and
# the final checkpoint opened in the attention view. Needs what scripts/screenshots.sh needs
# (the app loads the default model first).
#
#   scripts/screenshots-training.sh [OUT_DIR]        (default: screenshots/)
source "$(dirname "$0")/screenshot-setup.sh"
export GLASSBOX_EXPORT_DIR="$RAW/figures"
export GLASSBOX_DEVICE="${GLASSBOX_DEVICE:-cpu}"
# Checkpoints of these runs go to a private cache, not the user's.
export GLASSBOX_TRAIN_DIR="$RAW/training"

script_for() {
  local lang="$1" d="$RAW/$1"
  cat <<SCRIPT
size 1600 1000
lang $lang
panels lesson
lesson 21-induction-phase-change
train induction 40
wait
traintab curves
shot $d/18-training-before-phase-change.png
traininspect
wait
shot $d/19-training-step-through.png
trainresume 1000
wait
traintab curves
shot $d/20-training-after-phase-change.png
trainopen
wait
shot $d/21-training-checkpoint-attention.png
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
ls -l "$OUT"/*training*
