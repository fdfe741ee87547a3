#!/usr/bin/env bash
# Screenshots of workshop mode (`glassbox --workshop`) in English and Chinese: two sessions on
# the cached SmolLM2 written here (the model named by its sha256, computed as
# `load/fetch/identity.rs` does from glassbox_source.json), the first one opened with the
# prompt box locked and "1 / 2: …" in the menu bar, then the second after `workshop next` (PgDn).
#
#   scripts/screenshots-workshop.sh [OUT_DIR]        (default: screenshots/)
source "$(dirname "$0")/screenshot-setup.sh"
export GLASSBOX_DEVICE="${GLASSBOX_DEVICE:-cpu}"
export XDG_CACHE_HOME="${XDG_CACHE_HOME:-$HOME/.cache}"
SMOL="$XDG_CACHE_HOME/glassbox/models/smollm2-135m-instruct"
W="$RAW/workshop"; mkdir -p "$W"
python3 - "$SMOL" "$W" <<'PY'
import hashlib, json, sys
smol, out = sys.argv[1], sys.argv[2]
files = json.load(open(f"{smol}/glassbox_source.json"))["files"]
lines = "".join(f"{n} {files[n]['sha256']}\n" for n in ["config.json", "model.safetensors"])
sha = hashlib.sha256(lines.encode()).hexdigest()
def session(prompt, step, view, modes):
    return {"glassbox_session": 1, "model": {"name": "smollm2-135m-instruct", "sha256": sha},
            "prompt": prompt, "chat": False, "step": step, "view": view, "modes": modes,
            "selection": {"layer": 3, "head": 4, "position": 5},
            "sampling": {"temperature": 1.0, "top_k": 0, "top_p": 1.0}}
json.dump(session("The capital of France is Paris. The capital of Italy is", "blocks.3.softmax", "attention", ["head"]), open(f"{out}/01.glassbox.json", "w"))
json.dump(session("The capital of France is", "logits", "output", []), open(f"{out}/02.glassbox.json", "w"))
json.dump({"workshop": "Attention heads", "sessions": ["01.glassbox.json", "02.glassbox.json"]}, open(f"{out}/class.json", "w"))
PY
for lang in en zh; do
  mkdir -p "$RAW/$lang"
  # The language is set before the window opens, so the "Session opened" notice is in it.
  L="$(echo "${lang:0:1}" | tr a-z A-Z)${lang:1}"
  printf '{"lang": "%s"}' "$L" > "$RAW/state-$lang.json"
  script="size 1280 720; lang $lang; wait; frames 10; shot $RAW/$lang/workshop-1.png; workshop next; wait; frames 10; shot $RAW/$lang/workshop-2.png; quit"
  GLASSBOX_STATE_FILE="$RAW/state-$lang.json" GLASSBOX_SCREENSHOT_SCRIPT="$script" \
    xvfb-run -a -s "-screen 0 1600x1000x24" ./target/release/glassbox --workshop "$W/class.json"
  for f in "$RAW/$lang"/*.png; do
    convert "$f" +dither -colors 128 "PNG8:$OUT/$lang-$(basename "$f")"
  done
done
