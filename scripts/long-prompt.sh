#!/usr/bin/env bash
# An 8,192-token prompt (SmolLM2's whole context) in the real GUI under the default memory
# budget, with its peak RSS: the lessons' English text, pasted through the prompt box (so
# it is tokenized off the UI thread and cut to the context with a notice), run as a long
# pass (the overview in chunks), then an attention head recomputed for the last 256
# positions and the pooled map of all 8,192, in English and then Chinese (the same pass). Needs xvfb, GNU time, imagemagick and the
# default model in the cache. Minutes on 2 cores.
#
#   scripts/long-prompt.sh [OUT_DIR]        (default: screenshots/)
source "$(dirname "$0")/screenshot-setup.sh"
export GLASSBOX_DEVICE="${GLASSBOX_DEVICE:-cpu}"

# ~60,000 characters of real prose: well over 8,192 tokens, under the box's 120,000.
cat lessons/en/*.md lessons/en/*.md > "$RAW/all.txt"
head -c 60000 "$RAW/all.txt" > "$RAW/prompt.txt"

mkdir -p "$RAW/en" "$RAW/zh"
cat > "$RAW/script" <<SCRIPT
size 1600 1000
lang en
promptfile $RAW/prompt.txt
wait 3600
goto blocks.5.softmax
view attention
attn head
head 3
wait
frames 4
shot $RAW/en/long-prompt-8192-attention-head.png
attn overview
wait
frames 4
shot $RAW/en/long-prompt-8192-attention-overview.png
lang zh
frames 4
shot $RAW/zh/long-prompt-8192-attention-overview.png
attn head
wait
frames 4
shot $RAW/zh/long-prompt-8192-attention-head.png
quit
SCRIPT

GLASSBOX_STATE_FILE="$RAW/state.json" GLASSBOX_SCREENSHOT_SCRIPT="$(cat "$RAW/script")" \
  /usr/bin/time -v xvfb-run -a -s "-screen 0 1600x1000x24" ./target/release/glassbox 2> "$RAW/time.txt" || {
  cat "$RAW/time.txt"; exit 1; }
grep -E "glassbox:|Maximum resident set size|Elapsed \(wall" "$RAW/time.txt"
for lang in en zh; do
  for f in "$RAW/$lang"/*.png; do
    convert "$f" +dither -colors 128 "PNG8:$OUT/$lang-$(basename "$f")"
  done
done
ls -l "$OUT"/*-long-prompt-*
