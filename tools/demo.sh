#!/usr/bin/env bash
# The README's first command: installs what is missing, builds, and runs the main job.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh >/dev/null
exec "${EMBER_BUILD_DIR:-build}/tools/ember" demo "$@"
