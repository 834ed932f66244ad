// Does compute-sanitizer's initcheck see what cuBLAS writes? (issue 10, SECURITY.md)
// initcheck reported reads of uninitialised memory in ember's half-precision attention test
// where ember's kernels read the outputs of cuBLAS half-precision GEMMs, and in no float32 test.
// This program has no ember code: it fills A and B with cudaMemset, runs one cublasGemmEx into a
// fresh C (whose every element the GEMM writes) and sums C with a plain kernel. Run under
//   compute-sanitizer --tool initcheck initcheck_cublas CASE
// a report on the sum kernel's read of C means initcheck did not see cuBLAS's stores.
// CASE: half, bfloat16, float (cuBLAS's float32 GEMM, the control), or half-memset (C set
// with cudaMemset before the GEMM: no report can come from the sum's reads then).
// Build: nvcc -O2 -arch=sm_90 tools/initcheck_cublas.cu -lcublas -o initcheck_cublas
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdio>
#include <cstring>

#define CHECK(call)                                                                \
  do {                                                                             \
    if (auto status = (call); status != 0) {                                       \
      std::fprintf(stderr, "%s failed (%d) at line %d\n", #call, static_cast<int>(status), __LINE__); \
      return 1;                                                                    \
    }                                                                              \
  } while (0)

template <typename T>
__global__ void sum_kernel(const T* c, int n, float* total) {
  float acc = 0;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) acc += static_cast<float>(c[i]);
  atomicAdd(total, acc);
}

template <typename T>
int run(cudaDataType type, cublasComputeType_t compute, bool memset_c) {
  constexpr int n = 512;
  T *a, *b, *c;
  float* total;
  CHECK(cudaMalloc(&a, n * n * sizeof(T)));
  CHECK(cudaMalloc(&b, n * n * sizeof(T)));
  CHECK(cudaMalloc(&c, n * n * sizeof(T)));
  CHECK(cudaMalloc(&total, sizeof(float)));
  CHECK(cudaMemset(a, 0x3c, n * n * sizeof(T)));  // small finite values in every type here
  CHECK(cudaMemset(b, 0x3c, n * n * sizeof(T)));
  CHECK(cudaMemset(total, 0, sizeof(float)));
  if (memset_c) CHECK(cudaMemset(c, 0, n * n * sizeof(T)));
  cublasHandle_t handle;
  CHECK(cublasCreate(&handle));
  const float one = 1, zero = 0;
  CHECK(cublasGemmEx(handle, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, a, type, n, b, type, n, &zero, c, type, n,
                     compute, CUBLAS_GEMM_DEFAULT));
  sum_kernel<T><<<64, 256>>>(c, n * n, total);
  CHECK(cudaGetLastError());
  float host = 0;
  CHECK(cudaMemcpy(&host, total, sizeof(float), cudaMemcpyDeviceToHost));
  std::printf("sum of C: %g\n", host);
  CHECK(cublasDestroy(handle));
  CHECK(cudaFree(a));
  CHECK(cudaFree(b));
  CHECK(cudaFree(c));
  CHECK(cudaFree(total));
  return 0;
}

int main(int argc, char** argv) {
  const char* which = argc > 1 ? argv[1] : "";
  if (!std::strcmp(which, "half")) return run<__half>(CUDA_R_16F, CUBLAS_COMPUTE_32F, false);
  if (!std::strcmp(which, "half-memset")) return run<__half>(CUDA_R_16F, CUBLAS_COMPUTE_32F, true);
  if (!std::strcmp(which, "bfloat16")) return run<__nv_bfloat16>(CUDA_R_16BF, CUBLAS_COMPUTE_32F, false);
  if (!std::strcmp(which, "float")) return run<float>(CUDA_R_32F, CUBLAS_COMPUTE_32F, false);
  std::fprintf(stderr, "usage: initcheck_cublas half|half-memset|bfloat16|float\n");
  return 2;
}
