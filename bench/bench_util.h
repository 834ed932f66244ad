// Small timing helpers for the benchmarks: medians of repeated runs after warm-up.
#pragma once

#include <algorithm>
#include <chrono>
#include <functional>
#include <vector>

#include "runtime/cuda/cuda.h"

namespace ember::bench {

/// Median seconds per call of fn, timing `reps` batches of `inner` calls after `warmup` calls.
inline double median_seconds(const std::function<void()>& fn, int inner, int reps = 15, int warmup = 3) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < inner; ++i) fn();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / inner);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

/// Median milliseconds per call of fn on a GPU, timed with device events over `reps` (11)
/// batches of `inner` calls after `warmup` (3) calls (PyTorch's side times the same way:
/// torch_cuda.gpu_ms).
inline double median_gpu_ms(const std::function<void()>& fn, int inner, int device, int warmup = 3, int reps = 11) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> ms;
  for (int r = 0; r < reps; ++r) {
    cuda::Event start(device), end(device);
    start.record();
    for (int i = 0; i < inner; ++i) fn();
    end.record();
    end.synchronize();
    ms.push_back(cuda::Event::elapsed_ms(start, end) / inner);
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

}  // namespace ember::bench
