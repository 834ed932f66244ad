// Convolutional-network benchmark of issue 6: an exported model (bench/torch_cnn.py writes
// resnet18 and resnet50 with a symbolic batch) on CUDA, fp32, timed as PyTorch eager is there:
//   <name>_infer_b1, <name>_infer_b64: evaluation-mode forward without autograd;
//   <name>_train_b64: training-mode forward, cross-entropy, backward and an SGD update.
// Each figure is the median over 11 event-timed batches of `inner` calls after warm-up.
// Usage: bench_cnn MODEL.ember NAME [out.csv]
#include <algorithm>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "ember.h"

using namespace ember;

namespace {

double median_gpu_ms(const std::function<void()>& fn, int inner, int device) {
  for (int i = 0; i < 3; ++i) fn();
  std::vector<double> ms;
  for (int r = 0; r < 11; ++r) {
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

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: bench_cnn MODEL.ember NAME [out.csv]\n");
    return 1;
  }
  const std::string path = argv[1], name = argv[2];
  FILE* csv = argc > 3 ? std::fopen(argv[3], "a") : nullptr;
  const Device device = Device::cuda(0);
  auto report = [&](const std::string& what, double ms) {
    std::printf("ember %-20s %9.3f ms\n", (name + "_" + what).c_str(), ms);
    if (csv) std::fprintf(csv, "%s_%s,%.6f,0,0\n", name.c_str(), what.c_str(), ms);
  };
  try {
    manual_seed(0);
    Model model = load(path, device);
    model.eval();
    for (int64_t batch : {1, 64}) {
      Tensor x = randn({batch, 3, 224, 224}, {kFloat32, device});
      NoGradGuard no_grad;
      report("infer_b" + std::to_string(batch), median_gpu_ms([&] { model.forward({x}); }, batch == 1 ? 20 : 5, 0));
    }
    model.train();
    nn::SGD opt(model.parameters(), {.lr = 0.01});
    Tensor x = randn({64, 3, 224, 224}, {kFloat32, device});
    Tensor y = randint(0, 1000, {64}, {kInt64, device});
    auto step = [&] {
      Tensor loss = nn::cross_entropy(model.forward({x})[0], y);
      opt.zero_grad();
      loss.backward();
      opt.step();
    };
    report("train_b64", median_gpu_ms(step, 3, 0));
  } catch (const Error& e) {
    std::fprintf(stderr, "bench_cnn: %s\n", e.what());
    return 1;
  }
  if (csv) std::fclose(csv);
  return 0;
}
