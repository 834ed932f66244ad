#!/usr/bin/env bash
# The README's first command: installs what is missing, builds, and runs the main job: loads a
# digits classifier exported from PyTorch (examples/data/digits_mlp.ember), runs it on the best
# device, fine-tunes it for an epoch with a progress bar, reports accuracy before and after, and
# saves the result (digits_mlp_tuned.ember).
# Usage: tools/demo.sh [--device cpu|cuda|cuda:N]   (default: a GPU where one is present)
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh >/dev/null
build=${EMBER_BUILD_DIR:-build}
device=best
[ "${1:-}" = "--device" ] && device=${2:-best}
exec "$build/examples/finetune_digits" --device "$device"
