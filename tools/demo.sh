#!/usr/bin/env bash
# The README's first command: installs what is missing, builds, and runs the main job: a short
# tour of tensors and ops, then training an MLP on the bundled handwritten digits.
# Usage: tools/demo.sh [--device cpu|cuda|cuda:N]   (default: a GPU where one is present)
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh >/dev/null
build=${EMBER_BUILD_DIR:-build}
device=best
[ "${1:-}" = "--device" ] && device=${2:-best}
"$build/tools/ember" demo --device "$device"
echo
exec "$build/examples/train_digits" --device "$device"
