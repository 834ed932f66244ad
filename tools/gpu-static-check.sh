#!/usr/bin/env bash
# Issue 11's single binary with CUDA, on the GPU machine: builds ember as a static library with
# the static CUDA runtime, links examples/classify into one executable, lists what it still
# loads at run time (cuBLAS, cuDNN and the driver: Debian ships no static builds of NVIDIA's
# libraries), and classifies the bundled digits on the GPU.
# Usage: tools/gpu-static-check.sh [build dir (build-gpu-static)]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-gpu-static}
export PATH="/usr/local/cuda/bin:$PATH"
arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d ' .')
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" --buildtype=release -Ddefault_library=static -Dtests=false -Dcuda=enabled \
    -Dcuda-arch="$arch" >"$build.configure.log" 2>&1 || { tail -20 "$build.configure.log"; exit 1; }
fi
ninja -C "$build" examples/classify >"$build.build.log" 2>&1 || { grep -E 'error' "$build.build.log" | head; exit 1; }
app=$build/examples/classify
echo "loads at run time: $(ldd "$app" | awk '{print $1}' | tr '\n' ' ')"
if ldd "$app" | grep -Eq 'libember|libcudart'; then
  echo "FAILED: the app loads libember or libcudart at run time"
  exit 1
fi
strip -o "$build/classify.stripped" "$app"
echo "executable: $(stat -c %s "$app") bytes, $(stat -c %s "$build/classify.stripped") stripped"
"$app" examples/data/digits_mlp.ember examples/data/digits_images.npy examples/data/digits_labels.npy \
  --scale 16 --device cuda
