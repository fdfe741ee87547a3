#!/usr/bin/env bash
# Screenshots of the Experiments view and the head-ablation picker (English and Chinese)
# from the real release binary under Xvfb, driven by the lessons' own try-it actions:
# the precision ladder, a patching grid filling in and complete, direct logit attribution,
# the head catalog, the causal mask switched off, and the picker with five heads ablated;
# plus the divergence figure File → Export writes (PNG and SVG). Needs what
# scripts/screenshots.sh needs.
#
#   scripts/screenshots-experiments.sh [OUT_DIR]        (default: screenshots/)
source "$(dirname "$0")/screenshot-setup.sh"
export GLASSBOX_DEVICE="${GLASSBOX_DEVICE:-cpu}"

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
shot $d/exp-1-precision-ladder.png
export
frames 3
lesson 30-which-part-did-it
action 1
frames 90
shot $d/exp-2-patching-running.png
wait
action 0
wait
frames 4
shot $d/exp-3-patching-resid-pre.png
action 2
wait
frames 4
shot $d/exp-4-logit-attribution.png
lesson 25-induction-heads
action 0
wait
frames 4
shot $d/exp-5-head-catalog.png
lesson 29-causal-vs-bidirectional
action 1
wait
frames 4
shot $d/exp-6-causal-mask-off.png
lesson 25-induction-heads
action 5
wait
ablate 17.3,17.4,17.5,18.6,18.7
wait
frames 4
shot $d/exp-7-ablation-picker.png
quit
SCRIPT
}

for lang in en zh; do
  mkdir -p "$RAW/$lang" "$RAW/figures-$lang"
  GLASSBOX_EXPORT_DIR="$RAW/figures-$lang" GLASSBOX_STATE_FILE="$RAW/state-$lang.json" \
    GLASSBOX_SCREENSHOT_SCRIPT="$(script_for "$lang")" \
    xvfb-run -a -s "-screen 0 1600x1000x24" ./target/release/glassbox
  for f in "$RAW/$lang"/*.png; do
    convert "$f" +dither -colors 128 "PNG8:$OUT/$lang-$(basename "$f")"
  done
  # The divergence curve File → Export wrote (the line chart: its SVG has polylines), as
  # PNG and SVG.
  svg="$(grep -l polyline "$RAW/figures-$lang"/*.svg | head -1)"
  convert "${svg%.svg}.png" +dither -colors 128 "PNG8:$OUT/$lang-export-divergence.png"
  cp "$svg" "$OUT/$lang-export-divergence.svg"
done
ls -l "$OUT"/*exp*
