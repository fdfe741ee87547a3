# Sourced by the screenshot scripts: the output folder ($OUT, from $1 or screenshots/), a
# scratch folder removed on exit ($RAW), the release binary built, and a private runtime
# folder so Mesa and the app's settings stay out of the user's.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT="${1:-screenshots}"
mkdir -p "$OUT"
RAW="$(mktemp -d)"
trap 'rm -rf "$RAW"' EXIT

cargo build --release -p glassbox

export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$RAW/xdg}"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
