// CPU benchmarks of issue 2: dispatch overhead of a tiny op, element-wise bandwidth on large
// arrays against a plain C++ loop and memcpy, Eigen GEMM at 1024^3 float32, and conv2d at
// batch 1 on resnet's and mobilenet_v2's shapes.
// Usage: bench_cpu [threads]   (default: 2 threads for the GEMM, as the CI machine has)
#include <Eigen/Core>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "bench/bench_util.h"
#include "ember.h"
#include "ops/cpu/gemm_isa.h"

using namespace ember;
using bench::median_seconds;

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  set_num_threads(threads);
  std::printf("ember %s, %d threads\n\n", version(), threads);

  // 1. Dispatch overhead: everything an op does besides its arithmetic.
  Tensor a = ones({1}), b = ones({1});
  double t_add = median_seconds([&] { Tensor c = add(a, b); }, 20000);
  double t_add_ = median_seconds([&] { add_(a, b); }, 20000);
  double t_relu = median_seconds([&] { Tensor c = relu(a); }, 20000);
  double t_scalar = median_seconds([&] { Tensor c = mul(a, 2.0); }, 20000);
  double t_view = median_seconds([&] { Tensor c = a.view({1, 1}); }, 20000);
  std::printf("dispatch overhead (1-element float32 tensors, median per op):\n");
  std::printf("  add(a, b)      %6.3f us\n  add_(a, b)     %6.3f us\n  relu(a)        %6.3f us\n", t_add * 1e6,
              t_add_ * 1e6, t_relu * 1e6);
  std::printf("  mul(a, 2.0)    %6.3f us\n  a.view({1,1})  %6.3f us\n\n", t_scalar * 1e6, t_view * 1e6);

  // 2. Element-wise bandwidth, bytes read + written, against a plain loop and memcpy.
  const int64_t n = 1 << 24;
  Tensor x = rand({n}), y = rand({n}), z = empty({n});
  const double bytes3 = 3.0 * 4 * n, bytes2 = 2.0 * 4 * n;
  double t_ember_add = median_seconds([&] { z = add(x, y); }, 1, 11);
  double t_ember_add_out = median_seconds([&] { copy_(z, x); add_(z, y); }, 1, 11) - median_seconds([&] { copy_(z, x); }, 1, 11);
  double t_ember_gelu = median_seconds([&] { z = gelu(x); }, 1, 11);
  double t_ember_copy = median_seconds([&] { copy_(z, x); }, 1, 11);
  std::vector<float> va(n, 1.f), vb(n, 2.f), vc(n);
  double t_loop = median_seconds(
      [&] {
        const float* pa = va.data();
        const float* pb = vb.data();
        float* pc = vc.data();
#pragma omp parallel for num_threads(threads)
        for (int64_t i = 0; i < n; ++i) pc[i] = pa[i] + pb[i];
      },
      1, 11);
  double t_memcpy = median_seconds([&] { std::memcpy(vc.data(), va.data(), 4 * n); }, 1, 11);
  std::printf("element-wise on 2^24 float32 (GB/s, bytes read + written):\n");
  std::printf("  ember add          %6.1f   (%.0f%% of the plain C++ loop)\n", bytes3 / t_ember_add / 1e9,
              100 * t_loop / t_ember_add);
  std::printf("  ember add_ (no alloc, approx) %6.1f\n", bytes3 / t_ember_add_out / 1e9);
  std::printf("  ember gelu         %6.1f\n", bytes2 / t_ember_gelu / 1e9);
  std::printf("  ember copy_        %6.1f   (%.0f%% of memcpy)\n", bytes2 / t_ember_copy / 1e9,
              100 * t_memcpy / t_ember_copy);
  std::printf("  plain C++ a+b loop %6.1f\n  memcpy             %6.1f\n\n", bytes3 / t_loop / 1e9,
              bytes2 / t_memcpy / 1e9);

  // 3. GEMM 1024^3 float32 through ember (its AVX2 or AVX-512 build of Eigen's GEMM where the
  // CPU has them, ops/cpu/gemm_isa.h) and through Eigen directly as this program is compiled.
  const int64_t m = 1024;
  Tensor p = randn({m, m}), q = randn({m, m});
  double t_mm = median_seconds([&] { Tensor r = matmul(p, q); }, 1, 9);
  Eigen::MatrixXf ep = Eigen::MatrixXf::Random(m, m), eq = Eigen::MatrixXf::Random(m, m), er(m, m);
  double t_eigen = median_seconds([&] { er.noalias() = ep * eq; }, 1, 9);
  const double flops = 2.0 * m * m * m;
  std::printf("GEMM 1024^3 float32: ember (%s) %.1f GFLOP/s, Eigen directly %.1f GFLOP/s (%.0f%%)\n",
              cpu_gemm::gemm_isa(), flops / t_mm / 1e9, flops / t_eigen / 1e9, 100 * t_eigen / t_mm);

  // 4. conv2d at batch 1 on resnet's and mobilenet_v2's shapes: the CPU kernel
  // (ops/cpu/conv.cpp) against the public-op form it replaced (conv2d_reference).
  std::printf("\nconv2d float32, batch 1 (kernel vs the public-op reference):\n");
  struct ConvCase {
    const char* name;
    int64_t c, o, hw, k, stride, pad, groups;
  };
  for (const ConvCase& c : {ConvCase{"resnet 7x7/2 3->64 224", 3, 64, 224, 7, 2, 3, 1},
                            ConvCase{"resnet 3x3 64->64 56", 64, 64, 56, 3, 1, 1, 1},
                            ConvCase{"resnet 1x1 256->64 56", 256, 64, 56, 1, 1, 0, 1},
                            ConvCase{"resnet 3x3 512->512 7", 512, 512, 7, 3, 1, 1, 1},
                            ConvCase{"mobilenet dw 3x3 144 56", 144, 144, 56, 3, 1, 1, 144}}) {
    Tensor x = randn({1, c.c, c.hw, c.hw}), w = randn({c.o, c.c / c.groups, c.k, c.k}), bias = randn({c.o});
    const nn::Pair s{c.stride, c.stride}, p{c.pad, c.pad}, d{1, 1};
    const double t_kernel = median_seconds([&] { nn::conv2d(x, w, bias, s, p, d, c.groups); }, 3, 7);
    const double t_ref = median_seconds([&] { conv2d_reference(x, w, bias, s, p, d, c.groups); }, 3, 7);
    std::printf("  %-26s kernel %8.3f ms, reference %8.3f ms (%.1fx)\n", c.name, t_kernel * 1e3, t_ref * 1e3,
                t_ref / t_kernel);
  }
  return 0;
}
