// Training-step benchmark of issue 4: an MLP 784-1024-1024-10 at batch 256, fp32, SGD
// (forward, cross-entropy, backward, update), on the CPU or a GPU. GPU time is the median of
// device-event timings around 20 steps after warm-up; bench/torch_cuda.py times the same step
// with PyTorch eager. With --graph-table it times instead, on CUDA, eager steps against steps
// replayed as CUDA graphs (nn::GraphStep) for two MLPs and two optimizers, one CSV line per
// case (name,eager_ms,graph_ms,captures,replays) for bench/train_graph_table.py.
// Usage: bench_train [--device cuda] [out.csv] | bench_train --graph-table
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "ember.h"

using namespace ember;

namespace {

// One case of the graph table: an MLP of `widths`, batch `batch`, SGD or Adam.
void graph_case(const std::vector<int64_t>& widths, int64_t batch, bool adam) {
  const Device device = Device::cuda(0);
  std::string name = "mlp";
  for (int64_t w : widths) name += "_" + std::to_string(w);
  name += "_b" + std::to_string(batch) + (adam ? "_adam" : "_sgd");
  double ms[2] = {0, 0};
  nn::GraphStepStats stats;
  for (int graphs = 0; graphs < 2; ++graphs) {
    manual_seed(0);
    nn::Sequential model;
    for (size_t i = 0; i + 1 < widths.size(); ++i) {
      model.push_back(std::make_shared<nn::Linear>(widths[i], widths[i + 1]));
      if (i + 2 < widths.size()) model.push_back(std::make_shared<nn::ReLU>());
    }
    model.to(device);
    std::unique_ptr<nn::Optimizer> opt;
    if (adam) opt = std::make_unique<nn::Adam>(model.parameters(), nn::AdamOptions{.lr = 1e-3});
    else opt = std::make_unique<nn::SGD>(model.parameters(), nn::SGDOptions{.lr = 0.01, .momentum = 0.9});
    const Tensor x = randn({batch, widths.front()}, {kFloat32, device});
    const Tensor y = randint(0, widths.back(), {batch}, {kInt64, device});
    nn::GraphStep step(
        *opt, [&](const TensorList& b) { return nn::cross_entropy(model(b[0]), b[1]); },
        {.cuda_graphs = graphs == 1});
    ms[graphs] = bench::median_gpu_ms([&] { step.step({x, y}); }, /*inner=*/20, device.index, /*warmup=*/10, /*reps=*/15);
    if (graphs == 1) stats = step.stats();
  }
  std::printf("%s,%.6f,%.6f,%lld,%lld%s%s\n", name.c_str(), ms[0], ms[1], static_cast<long long>(stats.captures),
              static_cast<long long>(stats.replays), stats.capture_failure.empty() ? "" : ",",
              stats.capture_failure.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  std::string device_name = "cuda";
  const char* csv_path = nullptr;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--graph-table") {
      for (bool adam : {false, true}) {
        graph_case({784, 1024, 1024, 10}, 256, adam);
        graph_case({64, 256, 256, 10}, 64, adam);
      }
      return 0;
    }
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
