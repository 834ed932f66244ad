#!/usr/bin/env bash
# Installs the built tree (meson install into a staging folder) and builds and runs a small
# consumer program against it twice: with meson and with CMake, both through ember.pc.
# Usage: tools/check-install.sh [build-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
meson install -C "$build" --destdir "$stage" --quiet >/dev/null
prefix=$(meson introspect "$build" --buildoptions | python3 -c "import json,sys; print(next(o['value'] for o in json.load(sys.stdin) if o['name']=='prefix'))")
pcdir=$(dirname "$(find "$stage" -name ember.pc | head -1)")
libdir=$(dirname "$(find "$stage" -name 'libember.so*' | head -1)")
test -f "$stage$prefix/include/ember/ember.h"
test -f "$stage$prefix/include/ember/runtime/tensor.h"
test -x "$stage$prefix/bin/ember"
# The staged ember.pc, with its prefix pointing into the staging folder.
mkdir -p "$stage/pc"
sed "s|^prefix=.*|prefix=$stage$prefix|" "$pcdir/ember.pc" >"$stage/pc/ember.pc"
export PKG_CONFIG_PATH="$stage/pc" LD_LIBRARY_PATH="$libdir"
meson setup "$stage/meson-build" tests/consumer/meson >/dev/null
ninja -C "$stage/meson-build" >/dev/null
"$stage/meson-build/consumer"
cmake -S tests/consumer/cmake -B "$stage/cmake-build" >/dev/null
cmake --build "$stage/cmake-build" >/dev/null
"$stage/cmake-build/consumer"
echo "installed tree: headers, library, ember.pc and the CLI; meson and CMake consumers built and ran"
