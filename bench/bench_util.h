// Small timing helpers for the benchmarks: medians of repeated runs after warm-up.
#pragma once

#include <algorithm>
#include <chrono>
#include <functional>
#include <vector>

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

}  // namespace ember::bench
