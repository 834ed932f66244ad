// Concurrent inference (issue 10): one loaded model run from several threads at once — on CUDA
// each thread on its own stream — gives every thread the single-threaded result.
#include <atomic>
#include <filesystem>
#include <thread>
#include <vector>

#include "tests/harness.h"

using namespace ember;
using namespace ember::test;
namespace fs = std::filesystem;

DEVICE_TEST("threads: one loaded model run from 4 threads at once gives the single-threaded result") {
  for (const char* name : {"cnn", "transformer"}) {
    INFO(name);
    const fs::path dir = fs::path(EMBER_SOURCE_DIR) / "tests/fixtures/models" / name;
    const Model m = load((dir / "model.ember").string(), device);
    const Tensor x = load_npy((dir / "input_0.npy").string()).to(device);
    Tensor want;
    {
      NoGradGuard no_grad;
      want = m.forward({x})[0].to(Device::cpu()).to(kFloat64);
    }
    const double scale = max(abs(want)).item<double>();
    std::atomic<int> wrong{0}, failed{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
      threads.emplace_back([&] {
        try {
          NoGradGuard no_grad;  // grad mode is per thread
          std::optional<cuda::StreamGuard> own_stream;
          if (device.is_cuda()) own_stream.emplace(cuda::Stream::create(device.index));
          for (int i = 0; i < 10; ++i) {
            const Tensor y = m.forward({x})[0].to(Device::cpu()).to(kFloat64);
            if (max(abs(sub(y, want))).item<double>() > 1e-5 * scale) ++wrong;
          }
        } catch (const std::exception&) {
          ++failed;
        }
      });
    for (std::thread& t : threads) t.join();
    CHECK(failed.load() == 0);
    CHECK(wrong.load() == 0);
    if (device.is_cuda()) {
      // The threads share the model's CUDA graph; a thread whose first call captures it makes
      // its library handles first (their creation cannot be captured).
      const InferenceStats s = m.inference_stats();
      INFO(s.capture_failure);
      CHECK(s.capture_failure.empty());
      CHECK(s.graphs_captured == 1);
      CHECK(s.graph_replays > 0);
    }
  }
}
