// The GPT benchmark of issue 7, ember's side (bench/torch_gpt.py is PyTorch's): nn::GPT with 6
// layers, width 384, 6 heads, T 256 and GPT-2's vocabulary on one GPU, fp32 (TF32 off):
// inference (evaluation mode, no autograd) at batch 1 and 16, and a training step at batch 16
// (forward, cross-entropy over the vocabulary, backward, AdamW). Medians of 11 event-timed
// batches after warm-up, as PyTorch's side. Rows gpt_infer_b1, gpt_infer_b16, gpt_train_b16,
// and the inference rows again with attention on the math path (…_math).
// Usage: bench_gpt [out.csv] [--only ROW]   (--only: one row alone, e.g. to profile it with
// kernel_trace.cpp)
#include <algorithm>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "ember.h"

using namespace ember;
using bench::median_gpu_ms;

int main(int argc, char** argv) {
  FILE* csv = nullptr;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--only" && i + 1 < argc) only = argv[++i];
    else csv = std::fopen(argv[i], "a");
  }
  auto wanted = [&](const char* row) { return only.empty() || only == row; };
  try {
    const Device dev = Device::cuda(0);
    nn::GPTConfig c;
    c.dropout = 0;
    manual_seed(0);
    nn::GPT gpt(c);
    gpt.to(dev);
    auto tokens = [&](int64_t b) { return randint(0, c.vocab_size, {b, c.block_size + 1}, {kInt64, dev}); };
    std::vector<std::pair<const char*, double>> rows;
    gpt.eval();
    {
      NoGradGuard no_grad;
      for (int64_t b : {1, 16}) {
        if (!wanted(b == 1 ? "gpt_infer_b1" : "gpt_infer_b16")) continue;
        Tensor x = tokens(b).slice(1, 0, c.block_size).contiguous();
        rows.emplace_back(b == 1 ? "gpt_infer_b1" : "gpt_infer_b16", median_gpu_ms([&] { gpt.forward(x); }, 5, 0));
        // The same with attention forced onto the math path: the fused float32 kernel's
        // baseline in the same run.
        nn::AttentionKernelGuard math(nn::AttentionKernel::Math);
        rows.emplace_back(b == 1 ? "gpt_infer_b1_math" : "gpt_infer_b16_math",
                          median_gpu_ms([&] { gpt.forward(x); }, 5, 0));
      }
    }
    gpt.train();
    // torch.optim.AdamW's defaults: decoupled weight decay 0.01.
    nn::Adam opt(gpt.parameters(), {.lr = 3e-4, .weight_decay = 0.01, .decoupled_weight_decay = true});
    Tensor t = tokens(16);
    Tensor x = t.slice(1, 0, c.block_size).contiguous(), y = t.slice(1, 1, c.block_size + 1).reshape({-1});
    if (wanted("gpt_train_b16"))
      rows.emplace_back("gpt_train_b16", median_gpu_ms(
                                           [&] {
                                             gpt.zero_grad();
                                             nn::cross_entropy(gpt.forward(x).reshape({-1, c.vocab_size}), y).backward();
                                             opt.step();
                                           },
                                           3, 0));
    for (const auto& [name, ms] : rows) {
      std::printf("ember %-16s %9.3f ms\n", name, ms);
      if (csv) std::fprintf(csv, "%s,%.6f,0,0\n", name, ms);
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "bench_gpt: %s\n", e.what());
    return 1;
  }
  if (csv) std::fclose(csv);
  return 0;
}
