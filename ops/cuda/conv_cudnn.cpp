// Conv2dOp on CUDA through cuDNN's convolution API. Descriptors take the tensors' real strides,
// so NCHW and channels-last inputs both run without a copy. The algorithm for a shape is chosen
// once (cuDNN's heuristics, the fastest whose workspace fits) and cached; the workspace comes
// from ember's allocator. fp32 keeps full precision (FMA math) unless TF32 is allowed, as
// PyTorch. A configuration cuDNN does not support runs the reference (public ops) on the GPU.
#include <cuda_runtime.h>

#include <climits>
#include <cstdint>
#include <map>
#include <mutex>
#include <tuple>

#include "ops/conv.h"
#include "ops/copy.h"
#include "ops/creation.h"
#include "ops/binary.h"
#include "ops/view.h"
#include "runtime/cuda/cuda.h"
#include "runtime/cuda/handles.h"
#include "runtime/cuda/runtime.h"
#include "runtime/error.h"

// The legacy convolution API is deprecated in cuDNN 9 in favour of the graph API, but present
// and supported; ember uses it until the graph API replaces it here.
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace ember {

namespace {

cudnnDataType_t cudnn_type(DType t) {
  switch (t) {
    case kFloat16: return CUDNN_DATA_HALF;
    case kBFloat16: return CUDNN_DATA_BFLOAT16;
    case kFloat32: return CUDNN_DATA_FLOAT;
    case kFloat64: return CUDNN_DATA_DOUBLE;
    default: break;
  }
  throw_error(ErrorCode::Unsupported, str_cat("[conv2d] dtype ", t, " is not supported on CUDA"));
}

template <typename T, cudnnStatus_t (*Create)(T*), cudnnStatus_t (*Destroy)(T)>
struct Descriptor {
  T d = nullptr;
  Descriptor() { EMBER_CUDNN_CHECK(Create(&d)); }
  ~Descriptor() { Destroy(d); }
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;
};
using TensorDesc = Descriptor<cudnnTensorDescriptor_t, cudnnCreateTensorDescriptor, cudnnDestroyTensorDescriptor>;
using FilterDesc = Descriptor<cudnnFilterDescriptor_t, cudnnCreateFilterDescriptor, cudnnDestroyFilterDescriptor>;
using ConvDesc = Descriptor<cudnnConvolutionDescriptor_t, cudnnCreateConvolutionDescriptor, cudnnDestroyConvolutionDescriptor>;

void set_tensor(const TensorDesc& desc, const Tensor& t) {
  auto i = [](int64_t v) { return static_cast<int>(v); };
  const Shape& s = t.sizes();
  const Strides& st = t.strides();
  EMBER_CUDNN_CHECK(cudnnSetTensor4dDescriptorEx(desc.d, cudnn_type(t.dtype()), i(s[0]), i(s[1]), i(s[2]), i(s[3]),
                                                 i(st[0]), i(st[1]), i(st[2]), i(st[3])));
}

// Everything the algorithm choice depends on.
using Key = std::tuple<int, DType, Shape, Strides, Shape, Pair2, Pair2, Pair2, int64_t, int>;

struct Choice {
  cudnnConvolutionFwdAlgo_t algo;
  size_t workspace;
};

std::mutex cache_mutex;
std::map<Key, Choice>& cache() {
  static std::map<Key, Choice> c;
  return c;
}

bool key_needs_exact_sums(DType t) { return t == kFloat32 || t == kFloat64; }

Choice choose(cudnnHandle_t h, const Key& key, const TensorDesc& x, const FilterDesc& w, const ConvDesc& conv,
              const TensorDesc& y, int device) {
  {
    std::lock_guard<std::mutex> lock(cache_mutex);
    auto it = cache().find(key);
    if (it != cache().end()) return it->second;
  }
  cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
  int found = 0;
  EMBER_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, x.d, w.d, conv.d, y.d, CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
                                                           &found, perf));
  // The heuristics' order, skipping what failed or needs more workspace than is free, and, for
  // float32 and float64, the FFT and non-fused Winograd algorithms, whose rounding is far from a
  // direct sum's.
  const bool exact = key_needs_exact_sums(std::get<1>(key));
  size_t free_bytes = 0, total = 0;
  {
    cuda::DeviceGuard guard(device);
    if (cudaMemGetInfo(&free_bytes, &total) != cudaSuccess) free_bytes = 0;
  }
  Choice choice{CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, 0};
  bool chosen = false;
  for (int i = 0; i < found && !chosen; ++i) {
    if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].memory > free_bytes / 2) continue;
    if (exact && (perf[i].algo == CUDNN_CONVOLUTION_FWD_ALGO_FFT || perf[i].algo == CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING ||
                  perf[i].algo == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED))
      continue;
    choice = {perf[i].algo, perf[i].memory};
    chosen = true;
  }
  if (!chosen)
    EMBER_CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(h, x.d, w.d, conv.d, y.d, choice.algo, &choice.workspace));
  std::lock_guard<std::mutex> lock(cache_mutex);
  cache().emplace(key, choice);
  return choice;
}

}  // namespace

void Conv2dOp::forward_cuda(const TensorList& inputs, const TensorList& outputs) {
  const Tensor& x = inputs[0];
  const Tensor w = inputs[1].contiguous();
  const Tensor& bias = inputs[2];
  const Tensor& y = outputs[0];
  const int device = x.device().index;
  if (x.numel() == 0 || y.numel() == 0) {
    fill_(y, 0);
    return;
  }
  // cuDNN's descriptors hold ints: larger sizes or strides take the reference path.
  for (const Tensor* t : {&x, &w, &y})
    for (int64_t d = 0; d < 4; ++d)
      if (t->sizes()[d] > INT32_MAX || t->strides()[d] > INT32_MAX) {
        copy_(y, conv2d_reference(x, w, bias, stride, padding, dilation, groups));
        return;
      }
  cudnnHandle_t h = cuda_detail::cudnn_handle(device);
  TensorDesc xd, yd;
  FilterDesc wd;
  ConvDesc cd;
  set_tensor(xd, x);
  set_tensor(yd, y);
  auto i = [](int64_t v) { return static_cast<int>(v); };
  EMBER_CUDNN_CHECK(cudnnSetFilter4dDescriptor(wd.d, cudnn_type(w.dtype()), CUDNN_TENSOR_NCHW, i(w.sizes()[0]),
                                               i(w.sizes()[1]), i(w.sizes()[2]), i(w.sizes()[3])));
  const bool is_double = x.dtype() == kFloat64;
  EMBER_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(cd.d, i(padding[0]), i(padding[1]), i(stride[0]), i(stride[1]),
                                                    i(dilation[0]), i(dilation[1]), CUDNN_CROSS_CORRELATION,
                                                    is_double ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT));
  EMBER_CUDNN_CHECK(cudnnSetConvolutionGroupCount(cd.d, i(groups)));
  const cudnnMathType_t math = x.dtype() == kFloat32 ? (cuda::allow_tf32() ? CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION : CUDNN_FMA_MATH)
                               : is_double            ? CUDNN_DEFAULT_MATH
                                                      : CUDNN_TENSOR_OP_MATH;
  EMBER_CUDNN_CHECK(cudnnSetConvolutionMathType(cd.d, math));
  const Key key{device, x.dtype(), x.sizes(), x.strides(), w.sizes(), stride, padding, dilation, groups, static_cast<int>(math)};
  const Choice choice = choose(h, key, xd, wd, cd, yd, device);
  Tensor workspace = choice.workspace > 0 ? empty({static_cast<int64_t>(choice.workspace)}, {kUInt8, x.device()}) : Tensor();
  const double one_d = 1, zero_d = 0;
  const float one_f = 1, zero_f = 0;
  const void* one = is_double ? static_cast<const void*>(&one_d) : &one_f;
  const void* zero = is_double ? static_cast<const void*>(&zero_d) : &zero_f;
  const cudnnStatus_t status =
      cudnnConvolutionForward(h, one, xd.d, x.data(), wd.d, w.data(), cd.d, choice.algo,
                              workspace.defined() ? workspace.data() : nullptr, choice.workspace, zero, yd.d, y.data());
  if (status == CUDNN_STATUS_NOT_SUPPORTED) {
    // A configuration cuDNN has no kernel for: the reference path, still on the GPU.
    copy_(y, conv2d_reference(x, w, bias, stride, padding, dilation, groups));
    return;
  }
  EMBER_CUDNN_CHECK(status);
  if (bias.defined()) add_(y, bias.reshape({1, bias.sizes()[0], 1, 1}));
}

}  // namespace ember
