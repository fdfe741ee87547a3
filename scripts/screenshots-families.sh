#!/usr/bin/env bash
# Screenshots of the figures drawn from each family's recipe, in English and Chinese: the MLP
# view of Gemma 3 270M beside SmolLM2's; Gemma 3 270M's diagram (sandwich norms, QK-norm, local
# and global layers), a local layer's attention head (the sliding window's band, said in words
# where the prompt is shorter than the window), its (1 + w) norm and √d embedding; GPT-2's and
# BERT's figures on their tiny fixtures (random weights, prompts as token ids: LayerNorm with
# bias, learned positions, BERT's post-norm, two-way attention and fill-in-the-blank output).
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
SCRIPT
  if [ "$model" = gemma-3-270m ]; then
    cat <<SCRIPT
goto blocks.0.softmax
view overview
shot $d/31-gemma-3-270m-diagram.png
goto blocks.0.softmax
view attention
attn head
position 12
shot $d/32-gemma-3-270m-local-layer-head.png
goto blocks.5.softmax
view attention
shot $d/33-gemma-3-270m-global-layer-head.png
goto blocks.2.ln1
view rmsnorm
shot $d/34-gemma-3-270m-norm-one-plus-w.png
goto embed
view embedding
shot $d/35-gemma-3-270m-embedding-scale.png
budget 4096
promptfile $RAW/long.txt
wait
goto blocks.0.softmax
view attention
attn head
position 700
shot $d/32b-gemma-3-270m-local-layer-head-long-prompt.png
SCRIPT
  fi
  echo quit
}

# A tiny fixture (no tokenizer: the prompt is token ids), three figures.
fixture_script() {
  local lang="$1" name="$2" d="$RAW/$1" norm_step=blocks.0.ln1
  [ "$name" = tiny-bert-mlm ] && norm_step=embed_ln
  mkdir -p "$d"
  cat <<SCRIPT
size 1600 1000
lang $lang
prompt 5 17 42 8 33 61 2 90 14 27
wait
goto blocks.0.softmax
view overview
shot $d/36-$name-diagram.png
goto blocks.0.softmax
view attention
attn head
position 3
shot $d/37-$name-attention-head.png
goto $norm_step
view rmsnorm
shot $d/38-$name-norm.png
goto pos_embed
view embedding
shot $d/39-$name-embedding-positions.png
goto logits
view output
shot $d/40-$name-output.png
quit
SCRIPT
}

# Longer than Gemma's 512-position window, so a local layer's band shows (~800 tokens).
head -c 3600 README.md > "$RAW/long.txt"
for lang in en zh; do
  for spec in "gemma-3-270m blocks.3.gelu_mul" "smollm2-135m blocks.5.silu_mul"; do
    set -- $spec
    GLASSBOX_STATE_FILE="$RAW/state-$lang-$1.json" GLASSBOX_SCREENSHOT_SCRIPT="$(script_for "$lang" "$1" "$2")" \
      xvfb-run -a -s "-screen 0 1600x1000x24" ./target/release/glassbox --model "$1"
  done
  for name in tiny-gpt2 tiny-bert-mlm; do
    GLASSBOX_STATE_FILE="$RAW/state-$lang-$name.json" GLASSBOX_SCREENSHOT_SCRIPT="$(fixture_script "$lang" "$name")" \
      xvfb-run -a -s "-screen 0 1600x1000x24" ./target/release/glassbox --model "tests/fixtures/$name"
  done
  for f in "$RAW/$lang"/*.png; do
    convert "$f" +dither -colors 128 "PNG8:$OUT/$lang-$(basename "$f")"
  done
done
