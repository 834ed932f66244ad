// Training-step benchmark of issue 4: an MLP 784-1024-1024-10 at batch 256, fp32, SGD
// (forward, cross-entropy, backward, update), on the CPU or a GPU. GPU time is the median of
// device-event timings around 20 steps after warm-up; bench/torch_cuda.py times the same step
// with PyTorch eager.
// Usage: bench_train [--device cuda] [out.csv]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "ember.h"

using namespace ember;

int main(int argc, char** argv) {
  std::string device_name = "cuda";
  const char* csv_path = nullptr;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--device" && i + 1 < argc) device_name = argv[++i];
    else csv_path = argv[i];
  }
  const Device device = Device::parse(device_name);
  manual_seed(0);
  nn::Sequential model({std::make_shared<nn::Linear>(784, 1024), std::make_shared<nn::ReLU>(),
                        std::make_shared<nn::Linear>(1024, 1024), std::make_shared<nn::ReLU>(),
                        std::make_shared<nn::Linear>(1024, 10)});
  model.to(device);
  nn::SGD opt(model.parameters(), {.lr = 0.01});
  Tensor x = randn({256, 784}, {kFloat32, device});
  Tensor y = randint(0, 10, {256}, {kInt64, device});
  auto step = [&] {
    Tensor loss = nn::cross_entropy(model(x), y);
    opt.zero_grad();
    loss.backward();
    opt.step();
  };
  for (int i = 0; i < 10; ++i) step();
  const int inner = 20, reps = 15;
  std::vector<double> ms;
  for (int r = 0; r < reps; ++r) {
    if (device.is_cuda()) {
      cuda::Event start(device.index), end(device.index);
      start.record();
      for (int i = 0; i < inner; ++i) step();
      end.record();
      end.synchronize();
      ms.push_back(cuda::Event::elapsed_ms(start, end) / inner);
    } else {
      auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < inner; ++i) step();
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / inner);
    }
  }
  std::sort(ms.begin(), ms.end());
  const double median = ms[ms.size() / 2];
  std::printf("ember train step, MLP 784-1024-1024-10, batch 256, SGD, fp32, %s: %.4f ms (min %.4f, max %.4f)\n",
              device.str().c_str(), median, ms.front(), ms.back());
  if (csv_path) {
    FILE* f = std::fopen(csv_path, "a");
    std::fprintf(f, "train_step_mlp_b256,%.6f,0,0\n", median);
    std::fclose(f);
  }
  return 0;
}
