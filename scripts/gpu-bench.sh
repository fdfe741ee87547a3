#!/usr/bin/env bash
# GPU benchmark on a Linux machine with an NVIDIA GPU (Vulkan): builds the release binary and
# runs `glassbox bench --device gpu --json` (prefill-64 with and without full capture, decode
# tokens/s with per-step capture, peak memory, and the CPU figures and GPU/CPU ratios from the
# same run; `gpu_time` gives the GPU's own time from timestamp queries apart from recording and
# read-back), then the same with f16 weights. Results go to stdout and target/bench-gpu-*.json.
#
# Needs: the Rust toolchain (rust-toolchain.toml picks the version), the NVIDIA driver with its
# Vulkan ICD, and libvulkan1. The model comes from the cache (`glassbox fetch`), or
# --model DIR / GLASSBOX_MODEL. Extra arguments go to `glassbox bench` (e.g. --runs 11).
#
# Usage: scripts/gpu-bench.sh [--model DIR] [--runs N] [--decode-tokens N] [--per-op]
set -euo pipefail
cd "$(dirname "$0")/.."

export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}" # Mesa and some loaders complain without it

# Let the Vulkan loader see only the NVIDIA driver, so wgpu cannot fall back to lavapipe and
# report CPU-Vulkan numbers as GPU numbers.
for icd in /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
    if [[ -f "$icd" && -z "${VK_ICD_FILENAMES:-}" && -z "${VK_DRIVER_FILES:-}" ]]; then
        export VK_DRIVER_FILES="$icd" VK_ICD_FILENAMES="$icd"
    fi
done
if [[ -z "${VK_DRIVER_FILES:-}" ]]; then
    echo "gpu-bench: warning: no NVIDIA Vulkan ICD (nvidia_icd.json) found; wgpu picks whatever adapter exists" >&2
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >&2 || true

if ! command -v cargo >/dev/null; then
    echo "gpu-bench: cargo not found; install Rust from https://rustup.rs" >&2
    exit 1
fi
cargo build --release -p glassbox >&2
bin=target/release/glassbox

# `bench` loads (and on first use fetches) the model before any timing starts.
for precision in f32 f16; do
    out="target/bench-gpu-$precision.json"
    "$bin" bench --device gpu --precision "$precision" --json "$@" | tee "$out"
    if grep -q llvmpipe "$out"; then
        echo "gpu-bench: warning: the adapter is llvmpipe (CPU Vulkan), not a GPU" >&2
    fi
done
