// Convolutional-network benchmark of issue 6: an exported model (bench/torch_cnn.py writes
// resnet18 and resnet50 with a symbolic batch) on CUDA, fp32, timed as PyTorch eager is there:
//   <name>_infer_b1, <name>_infer_b64: evaluation-mode forward without autograd;
//   <name>_train_b64: training-mode forward, cross-entropy, backward and an SGD update.
// Each figure is the median over 11 event-timed batches of `inner` calls after warm-up.
// --tuned: cuDNN algorithms chosen by timing (cuda::set_cudnn_benchmark), rows named *_tuned.
// --layers: instead of a model, single layers of a resnet50 at batch 64 (forward + backward),
// for seeing where the time of a whole step goes.
// Usage: bench_cnn MODEL.ember NAME [out.csv] [--tuned] | bench_cnn --layers [out.csv]
#include <algorithm>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "ember.h"

using namespace ember;
using bench::median_gpu_ms;

// Forward + backward of single layers at resnet50's sizes, batch 64.
void bench_layers(FILE* csv) {
  const Device device = Device::cuda(0);
  auto report = [&](const char* what, double ms) {
    std::printf("ember %-24s %9.3f ms\n", what, ms);
    if (csv) std::fprintf(csv, "%s,%.6f,0,0\n", what, ms);
  };
  manual_seed(0);
  auto leaf = [&](const Shape& s) {
    Tensor t = randn(s, {kFloat32, device});
    t.requires_grad_();
    return t;
  };
  Tensor x = leaf({64, 256, 56, 56}), g = randn({64, 256, 56, 56}, {kFloat32, device});
  Tensor w = leaf({256}), b = leaf({256});
  Tensor rm = zeros({256}, {kFloat32, device}), rv = ones({256}, {kFloat32, device});
  report("layer_bn_train_fwd_bwd", median_gpu_ms([&] {
    grad({nn::batch_norm(x, rm, rv, w, b, true, 0.1, 1e-5)}, {x, w, b}, {g});
  }, 5, 0));
  report("layer_relu_fwd_bwd", median_gpu_ms([&] { grad({relu(x)}, {x}, {g}); }, 5, 0));
  Tensor xp = leaf({64, 64, 112, 112});
  Tensor gp = randn({64, 64, 56, 56}, {kFloat32, device});
  report("layer_maxpool_fwd_bwd", median_gpu_ms([&] {
    grad({nn::max_pool2d(xp, {3, 3}, {2, 2}, {1, 1})}, {xp}, {gp});
  }, 5, 0));
  Tensor xc = leaf({64, 64, 56, 56}), wc = leaf({64, 64, 3, 3});
  Tensor gc = randn({64, 64, 56, 56}, {kFloat32, device});
  {
    NoGradGuard no_grad;
    report("layer_conv3x3_fwd", median_gpu_ms([&] { nn::conv2d(xc, wc, Tensor(), {1, 1}, {1, 1}); }, 5, 0));
  }
  report("layer_conv3x3_fwd_bwd", median_gpu_ms([&] {
    grad({nn::conv2d(xc, wc, Tensor(), {1, 1}, {1, 1})}, {xc, wc}, {gc});
  }, 5, 0));
  {
    // The chosen algorithms' rounding: gradients against float64 ones (public ops on the GPU).
    TensorList gr = grad({nn::conv2d(xc, wc, Tensor(), {1, 1}, {1, 1})}, {xc, wc}, {gc});
    NoGradGuard no_grad;
    Tensor y = nn::conv2d(xc, wc, Tensor(), {1, 1}, {1, 1});
    const ConvParams p{{1, 1}, {1, 1}, {1, 1}, 1};
    Tensor x64 = xc.detach().to(kFloat64), w64 = wc.detach().to(kFloat64), g64 = gc.to(kFloat64);
    auto rel = [](const Tensor& a, const Tensor& ref) {
      return amax(abs(sub(a.to(kFloat64), ref))).item<double>() / amax(abs(ref)).item<double>();
    };
    std::printf("conv3x3 max error / max value: forward %.2e, input grad %.2e, weight grad %.2e\n",
                rel(y, conv2d_reference(x64, w64, Tensor(), {1, 1}, {1, 1}, {1, 1}, 1)),
                rel(gr[0], conv2d_input_grad_reference(g64, w64, xc.sizes(), p)),
                rel(gr[1], conv2d_weight_grad_reference(x64, g64, wc.sizes(), p)));
  }
  Tensor x1 = leaf({64, 256, 56, 56}), w1 = leaf({64, 256, 1, 1});
  {
    NoGradGuard no_grad;
    report("layer_conv1x1_fwd", median_gpu_ms([&] { nn::conv2d(x1, w1); }, 5, 0));
  }
  report("layer_conv1x1_fwd_bwd", median_gpu_ms([&] { grad({nn::conv2d(x1, w1)}, {x1, w1}, {gc}); }, 5, 0));
}

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  const bool tuned = std::find(args.begin(), args.end(), "--tuned") != args.end();
  const bool layers = std::find(args.begin(), args.end(), "--layers") != args.end();
  std::erase_if(args, [](const std::string& a) { return a.rfind("--", 0) == 0; });
  if (layers) {
    FILE* csv = !args.empty() ? std::fopen(args[0].c_str(), "a") : nullptr;
    try {
      bench_layers(csv);
    } catch (const Error& e) {
      std::fprintf(stderr, "bench_cnn: %s\n", e.what());
      return 1;
    }
    if (csv) std::fclose(csv);
    return 0;
  }
  if (args.size() < 2) {
    std::fprintf(stderr, "usage: bench_cnn MODEL.ember NAME [out.csv] [--tuned] | bench_cnn --layers [out.csv]\n");
    return 1;
  }
  const std::string path = args[0], name = args[1];
  const std::string suffix = tuned ? "_tuned" : "";
  cuda::set_cudnn_benchmark(tuned);
  FILE* csv = args.size() > 2 ? std::fopen(args[2].c_str(), "a") : nullptr;
  const Device device = Device::cuda(0);
  auto report = [&](const std::string& what, double ms) {
    std::printf("ember %-26s %9.3f ms\n", (name + "_" + what + suffix).c_str(), ms);
    if (csv) std::fprintf(csv, "%s_%s%s,%.6f,0,0\n", name.c_str(), what.c_str(), suffix.c_str(), ms);
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
