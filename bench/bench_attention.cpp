// The attention benchmark of issue 7, ember's side (bench/torch_attention.py is PyTorch's):
// scaled_dot_product_attention in bfloat16, batch 4, 16 heads, head dim 64, T 4096 (and 1024),
// forward alone and forward + backward, without and with the causal mask, on one GPU. Medians
// of event-timed batches after warm-up. FLOPs counted as FlashAttention does: 4·B·H·T²·D
// forward (halved when causal), 2.5 times that backward. Then float32 inference at the GPT's
// and vit_b_16's shapes, fused kernel and math path.
// Usage: bench_attention [out.csv]
#include <cstdio>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "ember.h"

using namespace ember;
using bench::median_gpu_ms;

int main(int argc, char** argv) {
  FILE* csv = argc > 1 ? std::fopen(argv[1], "a") : nullptr;
  try {
    const Device dev = Device::cuda(0);
    const int64_t B = 4, H = 16, D = 64;
    for (int64_t T : {1024, 4096}) {
      for (bool causal : {false, true}) {
        manual_seed(0);
        Tensor q = randn({B, H, T, D}, {kBFloat16, dev}).requires_grad_();
        Tensor k = randn({B, H, T, D}, {kBFloat16, dev}).requires_grad_();
        Tensor v = randn({B, H, T, D}, {kBFloat16, dev}).requires_grad_();
        Tensor dout = randn({B, H, T, D}, {kBFloat16, dev});
        const double flops = 4.0 * B * H * T * T * D * (causal ? 0.5 : 1.0);
        const std::string tag = "attn_T" + std::to_string(T) + (causal ? "_causal" : "");
        double fwd = 0;
        {
          NoGradGuard no_grad;
          fwd = median_gpu_ms([&] { nn::scaled_dot_product_attention(q, k, v, Tensor(), 0, causal); }, 10, 0);
        }
        const double both = median_gpu_ms(
            [&] {
              Tensor out = nn::scaled_dot_product_attention(q, k, v, Tensor(), 0, causal);
              grad({out}, {q, k, v}, {dout});
            },
            5, 0);
        const std::vector<std::pair<std::string, std::pair<double, double>>> rows = {
            {tag + "_fwd", {fwd, flops}}, {tag + "_fwd_bwd", {both, 3.5 * flops}}};
        for (const auto& [name, r] : rows) {
          std::printf("ember %-26s %9.3f ms %7.1f TFLOP/s\n", name.c_str(), r.first, r.second / r.first / 1e9);
          if (csv) std::fprintf(csv, "%s,%.6f,0,%.0f\n", name.c_str(), r.first, r.second);
        }
      }
    }
    // Float32 inference at the transformer models' own shapes: the GPT of the GPT benchmark
    // (batch 16, 6 heads, T 256, causal) and vit_b_16 at batch 32 (12 heads, 197 tokens), each
    // by the fused float32 kernel and by the math path.
    NoGradGuard no_grad;
    struct Shape4 {
      const char* tag;
      int64_t batch, heads, T;
      bool causal;
    };
    for (const Shape4& c : {Shape4{"attn_f32_gpt_b16", 16, 6, 256, true}, Shape4{"attn_f32_vit_b32", 32, 12, 197, false}}) {
      manual_seed(0);
      Tensor q = randn({c.batch, c.heads, c.T, D}, {kFloat32, dev});
      Tensor k = randn({c.batch, c.heads, c.T, D}, {kFloat32, dev});
      Tensor v = randn({c.batch, c.heads, c.T, D}, {kFloat32, dev});
      const double flops = 4.0 * c.batch * c.heads * c.T * c.T * D * (c.causal ? 0.5 : 1.0);
      for (auto kernel : {nn::AttentionKernel::Fused, nn::AttentionKernel::Math}) {
        nn::AttentionKernelGuard guard(kernel);
        const std::string name = std::string(c.tag) + (kernel == nn::AttentionKernel::Math ? "_math" : "") + "_fwd";
        const double ms =
            median_gpu_ms([&] { nn::scaled_dot_product_attention(q, k, v, Tensor(), 0, c.causal); }, 10, 0);
        std::printf("ember %-26s %9.3f ms %7.1f TFLOP/s\n", name.c_str(), ms, flops / ms / 1e9);
        if (csv) std::fprintf(csv, "%s,%.6f,0,%.0f\n", name.c_str(), ms, flops);
      }
    }
    // The math path at T 1024 for scale: the fused kernel's reason to exist.
    nn::AttentionKernelGuard math(nn::AttentionKernel::Math);
    Tensor q = randn({B, H, 1024, D}, {kBFloat16, dev});
    const double ms = median_gpu_ms([&] { nn::scaled_dot_product_attention(q, q, q); }, 10, 0);
    std::printf("ember %-26s %9.3f ms (math path)\n", "attn_T1024_math_fwd", ms);
  } catch (const Error& e) {
    std::fprintf(stderr, "bench_attention: %s\n", e.what());
    return 1;
  }
  if (csv) std::fclose(csv);
  return 0;
}
