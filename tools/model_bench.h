// `ember bench`: latency, throughput and memory of a model's forward on random inputs.
#pragma once

#include <cstdint>
#include <string>

namespace ember::tools {

struct BenchOptions {
  std::string device = "cpu";
  int64_t batch = 1;      // the size of every symbolic input dim
  int warmup = 10;        // forwards before timing, beyond the first two (eager, then captured)
  int iterations = 100;
  bool cuda_graphs = true;
  bool optimize = true;   // graph passes
  bool plan_memory = true;  // eager forwards from a planned arena (runtime/memory_plan.h)
  bool tf32 = false;      // float32 matrix products and convolutions on TF32 tensor cores
  std::string dtype;      // "float16" or "bfloat16": run a float32 model in reduced precision
  bool json = false;      // one JSON object instead of the table
};

/// Times Model::forward under NoGradGuard in evaluation mode. On CUDA: device time per forward
/// from events around each call (queued back to back) and end-to-end latency (each call
/// waited for); on the CPU wall-clock time. Medians and 10th/90th percentiles; peak memory;
/// with a reduced-precision dtype, the outputs' difference from the float32 run.
int model_bench(const std::string& path, const BenchOptions& options);

}  // namespace ember::tools
