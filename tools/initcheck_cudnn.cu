// Does compute-sanitizer's initcheck see what cuDNN's half-precision convolution writes into its
// workspace? (issue 10, SECURITY.md; the cuBLAS question is initcheck_cublas.cu's.)
// initcheck reported reads of uninitialised memory by cuDNN's own `nhwcToNchwKernel` in ember's
// float16 convolution test, whose outputs match float64 ones. This program has no ember code: a
// float16 NCHW convolution (3 × 16 × 13 × 11 input, 32 filters of 3 × 3, padding 1, tensor-core
// math, cuDNN's first heuristic choice) with every input element 1 and every weight 1/8, its
// workspace fresh from cudaMalloc; then it checks every output against the exact value
// (2 × the number of in-range taps), so whatever cuDNN read was written. Run under
//   compute-sanitizer --tool initcheck initcheck_cudnn [memset-workspace]
// memset-workspace sets the workspace with cudaMemset first.
// Build: nvcc -O2 -arch=sm_90 tools/initcheck_cudnn.cu -lcudnn -o initcheck_cudnn
#include <cuda_fp16.h>
#include <cudnn.h>

#include <cstdio>
#include <cstring>
#include <vector>

#define CHECK(call)                                                                                     \
  do {                                                                                                  \
    if (auto status = (call); status != 0) {                                                            \
      std::fprintf(stderr, "%s failed (%d) at line %d\n", #call, static_cast<int>(status), __LINE__); \
      return 1;                                                                                         \
    }                                                                                                   \
  } while (0)

int main(int argc, char** argv) {
  const bool memset_workspace = argc > 1 && !std::strcmp(argv[1], "memset-workspace");
  const int n = 3, c = 16, h = 13, w = 11, k = 32, r = 3;
  const size_t x_count = size_t{n} * c * h * w, w_count = size_t{k} * c * r * r, y_count = size_t{n} * k * h * w;
  std::vector<__half> x_host(x_count, __float2half(1.f)), w_host(w_count, __float2half(0.125f));
  __half *x, *filter, *y;
  CHECK(cudaMalloc(&x, x_count * sizeof(__half)));
  CHECK(cudaMalloc(&filter, w_count * sizeof(__half)));
  CHECK(cudaMalloc(&y, y_count * sizeof(__half)));
  CHECK(cudaMemcpy(x, x_host.data(), x_count * sizeof(__half), cudaMemcpyHostToDevice));
  CHECK(cudaMemcpy(filter, w_host.data(), w_count * sizeof(__half), cudaMemcpyHostToDevice));

  cudnnHandle_t handle;
  CHECK(cudnnCreate(&handle));
  cudnnTensorDescriptor_t x_desc, y_desc;
  cudnnFilterDescriptor_t w_desc;
  cudnnConvolutionDescriptor_t conv;
  CHECK(cudnnCreateTensorDescriptor(&x_desc));
  CHECK(cudnnCreateTensorDescriptor(&y_desc));
  CHECK(cudnnCreateFilterDescriptor(&w_desc));
  CHECK(cudnnCreateConvolutionDescriptor(&conv));
  CHECK(cudnnSetTensor4dDescriptor(x_desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_HALF, n, c, h, w));
  CHECK(cudnnSetTensor4dDescriptor(y_desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_HALF, n, k, h, w));
  CHECK(cudnnSetFilter4dDescriptor(w_desc, CUDNN_DATA_HALF, CUDNN_TENSOR_NCHW, k, c, r, r));
  CHECK(cudnnSetConvolution2dDescriptor(conv, 1, 1, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  CHECK(cudnnSetConvolutionMathType(conv, CUDNN_TENSOR_OP_MATH));
  cudnnConvolutionFwdAlgoPerf_t perf[8];
  int found = 0;
  CHECK(cudnnGetConvolutionForwardAlgorithm_v7(handle, x_desc, w_desc, conv, y_desc, 8, &found, perf));
  if (found == 0 || perf[0].status != CUDNN_STATUS_SUCCESS) {
    std::fprintf(stderr, "no forward algorithm\n");
    return 1;
  }
  size_t bytes = 0;
  CHECK(cudnnGetConvolutionForwardWorkspaceSize(handle, x_desc, w_desc, conv, y_desc, perf[0].algo, &bytes));
  void* workspace = nullptr;
  if (bytes > 0) CHECK(cudaMalloc(&workspace, bytes));
  if (bytes > 0 && memset_workspace) CHECK(cudaMemset(workspace, 0, bytes));
  const float one = 1, zero = 0;
  CHECK(cudnnConvolutionForward(handle, &one, x_desc, x, w_desc, filter, conv, perf[0].algo, workspace, bytes, &zero,
                                y_desc, y));
  std::vector<__half> y_host(y_count);
  CHECK(cudaMemcpy(y_host.data(), y, y_count * sizeof(__half), cudaMemcpyDeviceToHost));
  size_t wrong = 0;
  for (int b = 0; b < n; ++b)
    for (int o = 0; o < k; ++o)
      for (int i = 0; i < h; ++i)
        for (int j = 0; j < w; ++j) {
          const int rows = 3 - (i == 0) - (i == h - 1), cols = 3 - (j == 0) - (j == w - 1);
          const float want = 0.125f * c * rows * cols;  // exact in float16
          wrong += __half2float(y_host[((static_cast<size_t>(b) * k + o) * h + i) * w + j]) != want;
        }
  std::printf("algorithm %d, workspace %zu bytes%s: %zu of %zu outputs wrong\n", static_cast<int>(perf[0].algo), bytes,
              memset_workspace ? " (set first)" : "", wrong, y_count);
  return wrong == 0 ? 0 : 1;
}
