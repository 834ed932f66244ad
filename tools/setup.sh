#!/usr/bin/env bash
# Installs what ember's build needs (Debian packages; idempotent), then configures and builds
# ember in build/. Usage: tools/setup.sh [extra meson options...]
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(g++ meson ninja-build pkg-config cmake python3 python3-pip libeigen3-dev doctest-dev libcli11-dev libxxhash-dev
          libflatbuffers-dev flatbuffers-compiler)
tools/install-packages.sh "${packages[@]}"

# The exporter's Python dependencies (PyPI; torch is not needed to build or test ember: the
# exporter's torch tests are skipped where it is missing).
if ! python3 -c "import flatbuffers, numpy, pytest" >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check flatbuffers numpy pytest ||
    python3 -m pip install --quiet --disable-pip-version-check --break-system-packages flatbuffers numpy pytest
fi

# nvcc lives outside PATH on Debian's CUDA toolkit install.
[ -d /usr/local/cuda/bin ] && export PATH="/usr/local/cuda/bin:$PATH"

# Where nvcc is found the CUDA backend is built (meson's cuda=auto) for Jetson Orin (sm_87) and
# Hopper (sm_90), so both stay compiling; EMBER_CUDA_ARCH overrides (e.g. 90 for a faster build).
# EMBER_CUDA_COMPILE_CHECK=1 (CI) compiles the kernels to PTX only, quickly: see meson_options.txt.
arch_option=()
command -v nvcc >/dev/null 2>&1 && arch_option=(-Dcuda-arch="${EMBER_CUDA_ARCH:-87,90a}")
[ "${EMBER_CUDA_COMPILE_CHECK:-0}" = 1 ] && arch_option+=(-Dcuda-compile-check=true)
# EMBER_BENCH=0 (CI) leaves the benchmark programs out of the build.
[ "${EMBER_BENCH:-1}" = 0 ] && arch_option+=(-Dbench=false)

build_dir=${EMBER_BUILD_DIR:-build}
if [ ! -f "$build_dir/build.ninja" ]; then
  meson setup "$build_dir" --buildtype=release "${arch_option[@]}" "$@"
elif [ $# -gt 0 ]; then
  meson configure "$build_dir" "$@"
fi
ninja -C "$build_dir"
