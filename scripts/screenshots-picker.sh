#!/usr/bin/env bash
# Screenshots of the model picker (File → Open model…) in English and Chinese, of Gemma's
# terms screen (shown before Gemma is first downloaded) and of the download that Accept
# starts (into an empty scratch cache, cancelled by quitting), over SmolLM2. A fake home gives the
# "Found on this computer" list an LM Studio GGUF Glassbox runs and one it does not.
#
#   scripts/screenshots-picker.sh [OUT_DIR]        (default: screenshots/)
source "$(dirname "$0")/screenshot-setup.sh"
export GLASSBOX_DEVICE="${GLASSBOX_DEVICE:-cpu}"

# The picker scans $HOME (a fake one); the models themselves stay in the real cache. Found:
# SmolLM2 as a Hugging Face cache snapshot (symlinks into the real cache's files), a T5
# folder and a Mamba GGUF (both listed as unsupported, with why).
export XDG_CACHE_HOME="${XDG_CACHE_HOME:-$HOME/.cache}"
SMOL="$XDG_CACHE_HOME/glassbox/models/smollm2-135m-instruct"
FAKE="$RAW/home"
SNAP="$FAKE/.cache/huggingface/hub/models--HuggingFaceTB--SmolLM2-135M-Instruct/snapshots/12fd25f77366fa6b3b4b768ec3050bf629380bac"
mkdir -p "$SNAP"
for f in config.json model.safetensors tokenizer.json tokenizer_config.json; do ln -s "$SMOL/$f" "$SNAP/$f"; done
T5="$FAKE/.cache/huggingface/hub/models--google-t5--t5-small/snapshots/df1b051c49625cf57a3d0d8d3863ed4d13564fe4"
mkdir -p "$T5"
echo '{"model_type": "t5", "d_model": 512, "vocab_size": 32128}' > "$T5/config.json"
touch "$T5/model.safetensors"
MAMBA="$FAKE/.lmstudio/models/state-spaces/mamba-130m-GGUF"
mkdir -p "$MAMBA"
printf 'GGUF\3\0\0\0\0\0\0\0\0\0\0\0\1\0\0\0\0\0\0\0\24\0\0\0\0\0\0\0general.architecture\10\0\0\0\5\0\0\0\0\0\0\0mamba' \
  > "$MAMBA/mamba-130m-q8_0.gguf"

for lang in en zh; do
  d="$RAW/$lang"; mkdir -p "$d"
  script="size 1600 1000
lang $lang
prompt The capital of France is
wait
picker open
frames 10
shot $d/40-model-picker.png
picker gemma-terms
frames 10
shot $d/41-gemma-terms.png
quit"
  HOME="$FAKE" GLASSBOX_STATE_FILE="$RAW/state-$lang.json" GLASSBOX_SCREENSHOT_SCRIPT="$script" \
    xvfb-run -a -s "-screen 0 1600x1000x24" ./target/release/glassbox --model smollm2-135m
  for f in "$d"/*.png; do
    convert "$f" +dither -colors 128 "PNG8:$OUT/$lang-$(basename "$f")"
  done
done

# Accept: the fetch into an empty cache, its progress and Cancel (pip is stopped on quit).
for lang in en zh; do
  d="$RAW/fetch-$lang"; mkdir -p "$d"
  script="size 1600 1000
lang $lang
prompt The capital of France is
wait
picker gemma-terms
frames 5
picker accept
frames 60
shot $d/42-gemma-fetch.png
quit"
  HOME="$FAKE" XDG_CACHE_HOME="$RAW/empty-cache-$lang" GLASSBOX_STATE_FILE="$RAW/state-fetch-$lang.json" GLASSBOX_SCREENSHOT_SCRIPT="$script" \
    xvfb-run -a -s "-screen 0 1600x1000x24" ./target/release/glassbox --model "$SMOL"
  convert "$d/42-gemma-fetch.png" +dither -colors 128 "PNG8:$OUT/$lang-42-gemma-fetch.png"
done
