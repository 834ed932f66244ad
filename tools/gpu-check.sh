#!/usr/bin/env bash
# The GPU machine's check: builds ember with CUDA for this machine's card, runs every test
# (the CUDA cases included), the CPU and CUDA benchmarks and PyTorch's side of them, and
# prints a one-screen summary last. Logs go to build-gpu/logs; where $OUT is set (the device
# tool), the key ones are copied there (it returns at most 8 files) with the rest in a tarball.
# Usage: tools/gpu-check.sh [--no-bench | --cnn-bench | --ddp-bench | --transformer-bench | --inference-bench]
#   EMBER_SKIP_TESTS=1: build and benchmark only (a second call on a machine that just ran the
#   tests).
#   --cnn-bench: only the CNN benchmark; --ddp-bench: only the data-parallel benchmark (resnet50
#   and GPT training on 1, 2, 4, 8 GPUs up to the machine's count, ember beside PyTorch DDP;
#   EMBER_DDP_MODELS picks the models) and, with the GPT, the one-GPU GPT benchmark;
#   --transformer-bench: only the attention and GPT benchmarks beside PyTorch.
#   --inference-bench: only the inference table (bench/inference_table.py; EMBER_INFER_ARGS
#   passes e.g. "--only gpt,resnet50 --compile").
set -uo pipefail
cd "$(dirname "$0")/.."
out=build-gpu/logs
rm -rf "$out"
mkdir -p "$out"
bench=1
[ "${1:-}" = "--no-bench" ] && bench=0
[ "${1:-}" = "--cnn-bench" ] && bench=2
[ "${1:-}" = "--ddp-bench" ] && bench=3
[ "${1:-}" = "--transformer-bench" ] && bench=4
[ "${1:-}" = "--inference-bench" ] && bench=5
export PATH="/usr/local/cuda/bin:$PATH"

summary=()
note() { summary+=("$*"); }

nvidia-smi --query-gpu=name,compute_cap,memory.total,driver_version --format=csv,noheader >"$out/gpu.txt" 2>&1 ||
  { echo "no GPU: nvidia-smi failed"; cat "$out/gpu.txt"; exit 1; }
arch=$(head -1 "$out/gpu.txt" | cut -d, -f2 | tr -d ' .')
[ "$arch" = 90 ] && arch=90a  # Hopper's own instructions for the sm_90a attention forward
note "card: $(head -1 "$out/gpu.txt")   (building for sm_$arch)"

# The golden model fixtures and the bundled digits model are made here, where torch is, before
# the tests that read them; they come back in fixtures.tar.gz to be committed.
export PYTHONPATH="$PWD/tools/ember_export${PYTHONPATH:+:$PYTHONPATH}"
skip_tests=${EMBER_SKIP_TESTS:-0}
if [ "$skip_tests" = 1 ]; then
  note "fixtures and tests skipped (EMBER_SKIP_TESTS=1)"
elif python3 tools/make_model_fixtures.py . >"$out/fixtures.log" 2>&1; then
  note "fixtures: $(grep 'PyTorch test accuracy' "$out/fixtures.log")"
else
  note "fixtures FAILED: $(tail -3 "$out/fixtures.log")"
fi

build=build-gpu
start=$(date +%s)
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" --buildtype=release -Dcuda=enabled -Dcuda-arch="$arch" >"$out/configure.log" 2>&1 ||
    { tail -30 "$out/configure.log"; exit 1; }
fi
if ! ninja -C "$build" -k 0 >"$out/build.log" 2>&1; then
  grep -E "error" "$out/build.log" | sort -u | head -40
  echo "build failed"
  exit 1
fi
note "build: $(( $(date +%s) - start )) s, $(grep -c -i 'warning' "$out/build.log") warning lines"

test_rc=0
if [ "$skip_tests" != 1 ]; then
  EMBER_SKIP_SETUP=1 EMBER_BUILD_DIR=$build EMBER_TEST_LOGS="$out/tests" EMBER_EXPECT_CUDA=1 tools/test.sh >"$out/test.log" 2>&1
  test_rc=$?
  note "tests: $(tail -1 "$out/test.log")"
  [ $test_rc -ne 0 ] && grep -v '^ember_tests:' "$out/test.log" | head -40
fi

if [ $bench = 1 ]; then
  "$build/bench/bench_cpu" 16 >"$out/bench_cpu.txt" 2>&1 || note "bench_cpu failed"
  "$build/bench/bench_cuda" "$out/ember_cuda.csv" >"$out/bench_cuda.txt" 2>&1 || note "bench_cuda failed: $(tail -3 "$out/bench_cuda.txt")"
  "$build/bench/bench_train" --device cuda "$out/ember_cuda.csv" >"$out/bench_train.txt" 2>&1 || note "bench_train failed: $(tail -3 "$out/bench_train.txt")"
  python3 bench/torch_cuda.py "$out/torch_cuda.csv" >"$out/torch_cuda.txt" 2>&1 || note "torch_cuda.py failed: $(tail -3 "$out/torch_cuda.txt")"
  # Load time of a ~100 MB model: PyTorch's side also writes the .ember file.
  python3 bench/torch_load.py /tmp/ember_load_bench.ember >"$out/load.txt" 2>&1 || note "torch_load.py failed: $(tail -3 "$out/load.txt")"
  for dev in cpu cuda; do
    "$build/bench/bench_load" /tmp/ember_load_bench.ember $dev >>"$out/load.txt" 2>&1 || note "bench_load $dev failed"
  done
  if [ -f "$out/ember_cuda.csv" ] && [ -f "$out/torch_cuda.csv" ]; then
    python3 bench/compare.py "$out/ember_cuda.csv" "$out/torch_cuda.csv" >"$out/bench_table.md"
  fi
fi

if [ $bench = 3 ]; then
  # Data parallelism: one rank per GPU; the same per-GPU batch on 1, 2, 4, ... GPUs, for each
  # model in EMBER_DDP_MODELS (resnet50: exported from torchvision, batch 64, SGD, and the 1 GiB
  # all-reduce; gpt: nn::GPT, batch 16, AdamW). With gpt, also the one-GPU GPT benchmark.
  gpus=$(nvidia-smi -L | grep -c '^GPU')
  mkdir -p /tmp/ember_ddp
  rm -f "$out/ember_ddp.csv" "$out/torch_ddp.csv"
  port=29600
  for model in ${EMBER_DDP_MODELS:-resnet50 gpt}; do
    if [ $model = resnet50 ]; then
      python3 bench/torch_ddp.py export /tmp/ember_ddp >>"$out/ddp.txt" 2>&1 ||
        { note "torch_ddp.py export failed: $(tail -3 "$out/ddp.txt")"; continue; }
      what=/tmp/ember_ddp/resnet50.ember batch=64 extra=()
    else
      what=gpt batch=16 extra=(--no-allreduce)
      "$build/bench/bench_gpt" "$out/ember_gpt.csv" >>"$out/gpt.txt" 2>&1 || note "bench_gpt failed: $(tail -3 "$out/gpt.txt")"
      python3 bench/torch_gpt.py "$out/torch_gpt.csv" >>"$out/gpt.txt" 2>&1 || note "torch_gpt.py failed: $(tail -3 "$out/gpt.txt")"
      [ -f "$out/ember_gpt.csv" ] && [ -f "$out/torch_gpt.csv" ] &&
        python3 bench/compare.py "$out/ember_gpt.csv" "$out/torch_gpt.csv" >"$out/gpt_table.md"
    fi
    for n in 1 2 4 8; do
      [ $n -gt "$gpus" ] && break
      port=$((port + 2))
      timeout 300 "$build/tools/ember" launch --nproc-per-node $n --master-port $port -- \
        "$build/bench/bench_ddp" $what $model "$out/ember_ddp.csv" --batch $batch "${extra[@]}" >>"$out/ddp.txt" 2>&1 ||
        note "bench_ddp $model on $n GPUs failed: $(tail -3 "$out/ddp.txt")"
      timeout 300 python3 -m torch.distributed.run --standalone --nproc-per-node $n bench/torch_ddp.py time \
        "$out/torch_ddp.csv" --model $model --batch $batch >>"$out/ddp.txt" 2>&1 ||
        note "torch_ddp.py $model on $n GPUs failed: $(tail -3 "$out/ddp.txt")"
      if [ $n = 2 ]; then  # what the overlap saves
        timeout 300 "$build/tools/ember" launch --nproc-per-node 2 --master-port $((port + 1)) -- \
          "$build/bench/bench_ddp" $what $model "$out/ember_ddp.csv" --batch $batch --no-overlap \
          >>"$out/ddp.txt" 2>&1 || note "bench_ddp $model --no-overlap failed"
      fi
    done
  done
  [ -f "$out/ember_ddp.csv" ] && [ -f "$out/torch_ddp.csv" ] &&
    python3 bench/compare.py "$out/ember_ddp.csv" "$out/torch_ddp.csv" >"$out/ddp_table.md"
fi

if [ $bench = 4 ]; then
  "$build/bench/bench_attention" "$out/ember_attn.csv" >"$out/attn.txt" 2>&1 || note "bench_attention failed: $(tail -3 "$out/attn.txt")"
  python3 bench/torch_attention.py "$out/torch_attn.csv" >>"$out/attn.txt" 2>&1 || note "torch_attention.py failed: $(tail -3 "$out/attn.txt")"
  [ -f "$out/ember_attn.csv" ] && [ -f "$out/torch_attn.csv" ] &&
    python3 bench/compare.py "$out/ember_attn.csv" "$out/torch_attn.csv" >"$out/attn_table.md"
  "$build/bench/bench_gpt" "$out/ember_gpt.csv" >>"$out/gpt.txt" 2>&1 || note "bench_gpt failed: $(tail -3 "$out/gpt.txt")"
  python3 bench/torch_gpt.py "$out/torch_gpt.csv" >>"$out/gpt.txt" 2>&1 || note "torch_gpt.py failed: $(tail -3 "$out/gpt.txt")"
  [ -f "$out/ember_gpt.csv" ] && [ -f "$out/torch_gpt.csv" ] &&
    python3 bench/compare.py "$out/ember_gpt.csv" "$out/torch_gpt.csv" >"$out/gpt_table.md"
fi

if [ $bench = 5 ]; then
  # shellcheck disable=SC2086
  python3 bench/inference_table.py "$build/tools/ember" /tmp/ember_infer ${EMBER_INFER_ARGS:-} >"$out/inference.txt" 2>&1 ||
    note "inference_table.py failed: $(tail -3 "$out/inference.txt")"
fi

if [ $bench = 1 ] || [ $bench = 2 ]; then
  # Convolutional networks: PyTorch exports the models and times its side, then ember's.
  mkdir -p /tmp/ember_cnn
  if python3 bench/torch_cnn.py /tmp/ember_cnn "$out/torch_cnn.csv" >"$out/cnn.txt" 2>&1; then
    for name in resnet18 resnet50; do
      for mode in "" --tuned; do
        "$build/bench/bench_cnn" "/tmp/ember_cnn/$name.ember" $name "$out/ember_cnn.csv" $mode >>"$out/cnn.txt" 2>&1 ||
          note "bench_cnn $name $mode failed: $(tail -3 "$out/cnn.txt")"
      done
    done
    "$build/bench/bench_cnn" --layers "$out/ember_cnn.csv" >>"$out/cnn.txt" 2>&1 || note "bench_cnn --layers failed"
    [ -f "$out/ember_cnn.csv" ] && python3 bench/compare.py "$out/ember_cnn.csv" "$out/torch_cnn.csv" >"$out/cnn_table.md"
  else
    note "torch_cnn.py failed: $(tail -3 "$out/cnn.txt")"
  fi
fi

{
  echo "================ gpu-check summary ================"
  for line in "${summary[@]}"; do echo "$line"; done
  [ -f "$out/bench_table.md" ] && cat "$out/bench_table.md"
  [ -f "$out/cnn_table.md" ] && cat "$out/cnn_table.md"
  [ -f "$out/ddp.txt" ] && grep -E '^(ember|torch) ' "$out/ddp.txt"
  [ -f "$out/ddp_table.md" ] && cat "$out/ddp_table.md"
  [ -f "$out/gpt.txt" ] && grep -E '^(ember|torch) ' "$out/gpt.txt"
  [ -f "$out/gpt_table.md" ] && cat "$out/gpt_table.md"
  [ -f "$out/attn.txt" ] && grep -E 'math path' "$out/attn.txt"
  [ -f "$out/attn_table.md" ] && cat "$out/attn_table.md"
  [ -f "$out/inference.txt" ] && cat "$out/inference.txt"
  [ -f "$out/tests/ember_tests.log" ] && grep -E '^attention ' "$out/tests/ember_tests.log"
  [ -f "$out/tests/killed0.log" ] && { echo "killed-rank test, the survivor's last lines:"; tail -3 "$out/tests/killed0.log"; }
  [ -f "$out/tests/export_figures.txt" ] && cat "$out/tests/export_figures.txt"
  [ -f "$out/bench_train.txt" ] && tail -3 "$out/bench_train.txt"
  [ -f "$out/load.txt" ] && cat "$out/load.txt"
  [ -f "$out/bench_cpu.txt" ] && grep -E 'add\(a, b\)|ember add |GFLOP' "$out/bench_cpu.txt"
} >"$out/summary.txt"
if [ -n "${OUT:-}" ]; then
  for f in summary.txt test.log tests/ember_tests.log bench_cuda.txt torch_cuda.txt bench_train.txt; do
    [ -f "$out/$f" ] && cp "$out/$f" "$OUT/"
  done
  tar -czf "$OUT/logs.tar.gz" -C "$out" .
  tar -czf "$OUT/fixtures.tar.gz" tests/fixtures/models examples/data/digits_mlp.ember 2>/dev/null
fi
cat "$out/summary.txt"
exit $test_rc
