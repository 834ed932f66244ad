#!/usr/bin/env bash
# Builds bench/libtorch_bench.cpp against the PyTorch that python3 imports (its headers and
# libraries; the CUDA runtime from the CUDA toolkit, the same major version as PyTorch's).
# Only for the inference table's libtorch column on the GPU machine; ember's build never uses it.
# Usage: tools/build-libtorch-bench.sh OUTPUT [TORCH_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
output=$1
torch_dir=${2:-$(python3 -c "import os, torch; print(os.path.dirname(torch.__file__))")}
abi=$(python3 -c "import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))" 2>/dev/null || echo 1)
cuda=${CUDA_HOME:-/usr/local/cuda}
g++ -O2 -std=c++17 -D_GLIBCXX_USE_CXX11_ABI="$abi" bench/libtorch_bench.cpp -o "$output" \
  -isystem "$torch_dir/include" -isystem "$torch_dir/include/torch/csrc/api/include" -isystem "$cuda/include" \
  -L"$torch_dir/lib" -Wl,-rpath,"$torch_dir/lib" -Wl,--no-as-needed -ltorch -ltorch_cuda -ltorch_cpu -lc10_cuda -lc10 \
  -Wl,--as-needed -L"$cuda/lib64" -lcudart ${LIBTORCH_BENCH_LDFLAGS:-}
