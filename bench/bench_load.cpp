// Time from a .ember file on disk (in the page cache) to the model's first output:
//   verify: map + full verification (identifier, flatbuffer verifier, semantic checks, XXH3)
//   load:   Model::load on the device (verification + one upload per weight for CUDA)
//   first:  load + the first forward, synchronised
// Medians of 11 runs after one warm-up; each run maps the file anew.
// Usage: bench_load MODEL.ember [cpu|cuda] [batch]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "ember.h"

using namespace ember;

namespace {

double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_load MODEL.ember [cpu|cuda] [batch]\n");
    return 1;
  }
  const std::string path = argv[1];
  const Device device = Device::parse(argc > 2 ? argv[2] : "cpu");
  const int64_t batch = argc > 3 ? std::atoll(argv[3]) : 1;
  try {
    std::vector<double> verify, load_ms, first;
    for (int rep = 0; rep < 12; ++rep) {
      double t0 = now_ms();
      { ModelFile f = read_model_file(path); }
      double t1 = now_ms();
      Model m = load(path, device, {.trainable = false});
      if (device.is_cuda()) cuda::synchronize(device.index);
      double t2 = now_ms();
      const graph::Graph& g = m.graph();
      TensorList inputs;
      for (uint32_t id : g.inputs) {
        Shape shape;
        for (const graph::Dim& d : g.values[id].shape) shape.push_back(d.is_symbolic() ? batch : d.size);
        inputs.push_back(ones(shape, {g.values[id].dtype, device}));
      }
      // Inputs are made before the clock restarts: the timing is load + forward.
      double t3 = now_ms();
      {
        NoGradGuard no_grad;
        TensorList y = m.forward(inputs);
        if (device.is_cuda()) cuda::synchronize(device.index);
      }
      double t4 = now_ms();
      if (rep == 0) continue;  // warm-up: first CUDA context use, cuBLAS handles
      verify.push_back(t1 - t0);
      load_ms.push_back(t2 - t1);
      first.push_back(t2 - t1 + t4 - t3);
    }
    ModelFile f = read_model_file(path);
    std::printf("model %s: %.1f MB, %zu nodes\n", path.c_str(), f.file_size / 1e6, f.graph.nodes.size());
    std::printf("ember verify (map + all checks + XXH3): %.2f ms\n", median(verify));
    std::printf("ember load on %s: %.2f ms\n", device.str().c_str(), median(load_ms));
    std::printf("ember load + first output on %s: %.2f ms\n", device.str().c_str(), median(first));
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
