// CUDA benchmarks of issue 3, each against its baseline in the same run: element-wise ops and
// reductions as bandwidth against a device-to-device cudaMemcpy, matmul against cuBLAS called
// directly, and the host cost of launching a tiny op. GPU times are medians of device-event
// timings after warm-up. bench/torch_cuda.py measures the same cases with PyTorch, and
// bench/compare.py joins the two into ratios.
// Usage: bench_cuda [out.csv]    (rows: case,milliseconds,bytes,flops)
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "ember.h"

using namespace ember;

void launch_empty_kernel(cudaStream_t stream);  // bench/empty_kernel.cu

namespace {

const Device kGpu = Device::cuda(0);
FILE* csv = nullptr;

cudaStream_t ember_stream() { return static_cast<cudaStream_t>(cuda::Stream::current(0).handle()); }

/// Median milliseconds per call of fn on the GPU, from events around `inner` calls.
double gpu_ms(const std::function<void()>& fn, int inner = 10, int reps = 25) {
  for (int i = 0; i < 3; ++i) fn();
  cuda::synchronize(0);
  std::vector<double> t;
  cuda::Event start(0), end(0);
  for (int r = 0; r < reps; ++r) {
    start.record();
    for (int i = 0; i < inner; ++i) fn();
    end.record();
    end.synchronize();
    t.push_back(cuda::Event::elapsed_ms(start, end) / inner);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

void report(const std::string& name, double ms, double bytes, double flops) {
  if (flops > 0)
    std::printf("  %-26s %9.4f ms  %8.1f TFLOP/s\n", name.c_str(), ms, flops / ms / 1e9);
  else
    std::printf("  %-26s %9.4f ms  %8.1f GB/s\n", name.c_str(), ms, bytes / ms / 1e6);
  if (csv) std::fprintf(csv, "%s,%.6f,%.0f,%.0f\n", name.c_str(), ms, bytes, flops);
}

void check_cublas(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) {
    std::fprintf(stderr, "%s failed: %d\n", what, int(s));
    std::exit(1);
  }
}

/// C = A B for n x n row-major matrices through cuBLAS directly (column-major: C^T = B^T A^T).
double cublas_ms(int n, cudaDataType type, cublasComputeType_t compute, const Tensor& a, const Tensor& b,
                 const Tensor& c) {
  cublasHandle_t h;
  check_cublas(cublasCreate(&h), "cublasCreate");
  check_cublas(cublasSetStream(h, ember_stream()), "cublasSetStream");
  void* workspace = nullptr;
  cudaMalloc(&workspace, 32 << 20);
  check_cublas(cublasSetWorkspace(h, workspace, 32 << 20), "cublasSetWorkspace");
  const float one = 1, zero = 0;
  double ms = gpu_ms([&] {
    check_cublas(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, b.data(), type, n, a.data(), type, n, &zero,
                              c.data(), type, n, compute, CUBLAS_GEMM_DEFAULT),
                 "cublasGemmEx");
  });
  cudaDeviceSynchronize();
  cudaFree(workspace);
  cublasDestroy(h);
  return ms;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1) csv = std::fopen(argv[1], "w");
  if (!cuda::is_available()) {
    std::fprintf(stderr, "bench_cuda: no GPU\n");
    return 1;
  }
  cuda::DeviceProperties p = cuda::properties(0);
  std::printf("ember %s on %s (sm_%d%d)\n", version(), p.name.c_str(), p.major, p.minor);
  manual_seed(0);

  // Element-wise and reductions on 2^26 float32 elements: bytes read + written.
  const int64_t n = int64_t{1} << 26;
  Tensor x = randn({n}, {kFloat32, kGpu}), y = randn({n}, {kFloat32, kGpu});
  Tensor z = empty({n}, {kFloat32, kGpu});
  const double b4 = 4.0 * n;
  std::printf("bandwidth (2^26 elements):\n");
  report("memcpy_d2d_f32", gpu_ms([&] { cudaMemcpyAsync(z.data(), x.data(), 4 * n, cudaMemcpyDeviceToDevice, ember_stream()); }),
         2 * b4, 0);
  report("copy_f32", gpu_ms([&] { copy_(z, x); }), 2 * b4, 0);
  report("add_f32", gpu_ms([&] { Tensor r = add(x, y); }), 3 * b4, 0);
  report("mul_f32", gpu_ms([&] { Tensor r = mul(x, y); }), 3 * b4, 0);
  report("mul_scalar_f32", gpu_ms([&] { Tensor r = mul(x, 2.0); }), 2 * b4, 0);
  report("gelu_f32", gpu_ms([&] { Tensor r = gelu(x); }), 2 * b4, 0);
  report("exp_f32", gpu_ms([&] { Tensor r = exp(x); }), 2 * b4, 0);
  Tensor xh = x.to(kBFloat16), yh = y.to(kBFloat16);
  report("add_bf16", gpu_ms([&] { Tensor r = add(xh, yh); }), 3 * 2.0 * n, 0);
  Tensor m = x.view({8192, 8192}), row = y.slice(0, 0, 8192);
  report("add_broadcast_row_f32", gpu_ms([&] { Tensor r = add(m, row); }), 2 * b4, 0);
  report("add_transposed_f32", gpu_ms([&] { Tensor r = add(m.transpose(0, 1), m); }), 3 * b4, 0);
  report("sum_all_f32", gpu_ms([&] { Tensor r = sum(x); }), b4, 0);
  report("sum_lastdim_f32", gpu_ms([&] { Tensor r = sum(m, {1}); }), b4, 0);
  report("sum_firstdim_f32", gpu_ms([&] { Tensor r = sum(m, {0}); }), b4, 0);
  report("amax_all_f32", gpu_ms([&] { Tensor r = amax(x); }), b4, 0);
  x = y = z = xh = yh = m = row = Tensor();

  // Matmul 4096^3.
  const int s = 4096;
  const double flops = 2.0 * s * s * s;
  std::printf("matmul %d^3:\n", s);
  struct Case {
    const char* name;
    DType dtype;
    bool tf32;
    cudaDataType type;
    cublasComputeType_t compute;
  };
  for (const Case& c : {Case{"f32", kFloat32, false, CUDA_R_32F, CUBLAS_COMPUTE_32F},
                        Case{"tf32", kFloat32, true, CUDA_R_32F, CUBLAS_COMPUTE_32F_FAST_TF32},
                        Case{"bf16", kBFloat16, false, CUDA_R_16BF, CUBLAS_COMPUTE_32F},
                        Case{"f16", kFloat16, false, CUDA_R_16F, CUBLAS_COMPUTE_32F}}) {
    Tensor a = randn({s, s}, {c.dtype, kGpu}), b = randn({s, s}, {c.dtype, kGpu});
    cuda::set_allow_tf32(c.tf32);
    report(std::string("matmul_") + c.name, gpu_ms([&] { Tensor r = matmul(a, b); }), 0, flops);
    Tensor out = empty({s, s}, {c.dtype, kGpu});
    report(std::string("cublas_") + c.name, cublas_ms(s, c.type, c.compute, a, b, out), 0, flops);
  }
  cuda::set_allow_tf32(false);
  {
    Tensor a = randn({64, 512, 512}, {kFloat32, kGpu}), b = randn({64, 512, 512}, {kFloat32, kGpu});
    report("bmm_64x512_f32", gpu_ms([&] { Tensor r = matmul(a, b.transpose(1, 2)); }), 0, 2.0 * 64 * 512 * 512 * 512);
  }

  // Host cost per tiny op (what a small model's step is made of). "enqueue": the host time of
  // 256 launches from an idle GPU, fewer than the launch queue holds, so the GPU's own pace
  // does not enter; "sustained": many launches in a row, paced by whichever side is slower.
  Tensor t1 = ones({1}, {kFloat32, kGpu}), t2 = ones({1}, {kFloat32, kGpu});
  auto enqueue_ms = [&](const std::function<void()>& fn) {
    for (int i = 0; i < 100; ++i) fn();
    std::vector<double> t;
    for (int r = 0; r < 25; ++r) {
      cuda::synchronize(0);
      auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < 256; ++i) fn();
      t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / 256);
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
  };
  std::printf("tiny-op host cost:\n");
  report("enqueue_add_1elem", enqueue_ms([&] { Tensor r = add(t1, t2); }), 0, 0);
  report("enqueue_add__1elem", enqueue_ms([&] { add_(t1, t2); }), 0, 0);
  report("enqueue_mul_scalar_1elem", enqueue_ms([&] { Tensor r = mul(t1, 2.0); }), 0, 0);
  report("enqueue_empty_kernel", enqueue_ms([&] { launch_empty_kernel(ember_stream()); }), 0, 0);
  report("enqueue_memset_1elem", enqueue_ms([&] { cudaMemsetAsync(t1.data(), 0, 4, ember_stream()); }), 0, 0);
  report("alloc_free_4bytes", enqueue_ms([&] { Tensor r = empty({1}, {kFloat32, kGpu}); }), 0, 0);
  report("sustained_add_1elem", bench::median_seconds([&] { Tensor r = add(t1, t2); }, 2000) * 1e3, 0, 0);
  cuda::synchronize(0);
  if (csv) std::fclose(csv);
  return 0;
}
