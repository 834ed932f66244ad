// Does compute-sanitizer's initcheck see what cuDNN's half-precision convolution writes into its
// workspace? (issue 10, SECURITY.md; the cuBLAS question is initcheck_cublas.cu's.)
// initcheck reported reads of uninitialised memory by cuDNN's own `nhwcToNchwKernel` in ember's
// float16 convolution test, whose outputs match float64 ones. This program has no ember code: a
// float16 NCHW convolution (3 × 16 × 13 × 11 input, 32 filters of 3 × 3, tensor-core math) with
// every input element 1 and every weight 1/8, its workspace fresh from cudaMalloc; then it checks
// every output against the exact value (2/g × the number of in-range taps), so whatever cuDNN
// read was written. Stride, padding, dilation and groups are arguments, so that each of the
// test's four configurations (tests/test_vision.cpp) can be run alone; the algorithm is cuDNN's
// first heuristic choice, or (timed) the fastest of cudnnFindConvolutionForwardAlgorithmEx, as
// ember's tuned mode picks it. Run under
//   compute-sanitizer --tool initcheck initcheck_cudnn [fresh-workspace|memset-workspace]
//       [heuristic|timed] [sh sw ph pw dh dw groups]
// memset-workspace sets the workspace with cudaMemset first.
// Build: nvcc -O2 -arch=sm_90 tools/initcheck_cudnn.cu -lcudnn -o initcheck_cudnn
#include <cuda_fp16.h>
#include <cudnn.h>

#include <cstdio>
#include <cstdlib>
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
  const bool timed = argc > 2 && !std::strcmp(argv[2], "timed");
  int geometry[7] = {1, 1, 1, 1, 1, 1, 1};  // stride h w, padding h w, dilation h w, groups
  for (int i = 0; i < 7 && 3 + i < argc; ++i) geometry[i] = std::atoi(argv[3 + i]);
  const int sh = geometry[0], sw = geometry[1], ph = geometry[2], pw = geometry[3], dh = geometry[4],
            dw = geometry[5], groups = geometry[6];
  const int n = 3, c = 16, h = 13, w = 11, k = 32, r = 3;
  const int oh = (h + 2 * ph - dh * (r - 1) - 1) / sh + 1, ow = (w + 2 * pw - dw * (r - 1) - 1) / sw + 1;
  const size_t x_count = size_t{n} * c * h * w, w_count = size_t{k} * (c / groups) * r * r,
               y_count = size_t{n} * k * oh * ow;
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
  CHECK(cudnnSetTensor4dDescriptor(y_desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_HALF, n, k, oh, ow));
  CHECK(cudnnSetFilter4dDescriptor(w_desc, CUDNN_DATA_HALF, CUDNN_TENSOR_NCHW, k, c / groups, r, r));
  CHECK(cudnnSetConvolution2dDescriptor(conv, ph, pw, sh, sw, dh, dw, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  CHECK(cudnnSetConvolutionGroupCount(conv, groups));
  CHECK(cudnnSetConvolutionMathType(conv, CUDNN_TENSOR_OP_MATH));
  cudnnConvolutionFwdAlgoPerf_t perf[8];
  int found = 0;
  if (timed) {
    const size_t search_bytes = size_t{256} << 20;
    void* search = nullptr;
    CHECK(cudaMalloc(&search, search_bytes));
    CHECK(cudnnFindConvolutionForwardAlgorithmEx(handle, x_desc, x, w_desc, filter, conv, y_desc, y, 8, &found, perf,
                                                 search, search_bytes));
    CHECK(cudaFree(search));
  } else {
    CHECK(cudnnGetConvolutionForwardAlgorithm_v7(handle, x_desc, w_desc, conv, y_desc, 8, &found, perf));
  }
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
  // In-range taps of output position o along a dim of size `size`.
  auto taps = [r](int o, int stride, int pad, int dilation, int size) {
    int count = 0;
    for (int a = 0; a < r; ++a) {
      const int at = o * stride - pad + a * dilation;
      count += at >= 0 && at < size;
    }
    return count;
  };
  size_t wrong = 0;
  for (int b = 0; b < n; ++b)
    for (int o = 0; o < k; ++o)
      for (int i = 0; i < oh; ++i)
        for (int j = 0; j < ow; ++j) {
          const float want = 0.125f * (c / groups) * taps(i, sh, ph, dh, h) * taps(j, sw, pw, dw, w);  // exact
          wrong += __half2float(y_host[((static_cast<size_t>(b) * k + o) * oh + i) * ow + j]) != want;
        }
  std::printf("algorithm %d (%s), stride %dx%d padding %dx%d dilation %dx%d groups %d, workspace %zu bytes%s: %zu of %zu "
              "outputs wrong\n",
              static_cast<int>(perf[0].algo), timed ? "timed" : "heuristic", sh, sw, ph, pw, dh, dw, groups, bytes,
              memset_workspace ? " (set first)" : "", wrong, y_count);
  return wrong == 0 ? 0 : 1;
}
