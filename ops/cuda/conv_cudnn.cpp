// conv2d and its two gradients on CUDA through cuDNN's convolution API. Descriptors take the
// tensors' real strides, so NCHW and channels-last tensors both run without a copy. The
// algorithm for a shape and pass is chosen once (cuDNN's heuristics as in PyTorch, or timing
// under cuda::cudnn_benchmark(); the first whose workspace fits) and cached with its descriptors;
// the workspace comes from ember's allocator. fp32 keeps full precision (FMA math) unless TF32
// is allowed, as PyTorch. A configuration cuDNN does not support runs the public-op form on the
// GPU.
#include <cuda_runtime.h>

#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>

#include "ops/binary.h"
#include "ops/conv.h"
#include "ops/copy.h"
#include "ops/creation.h"
#include "ops/cuda/cudnn_util.h"
#include "ops/matmul.h"
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

using cudnn_util::data_or_null;
using cudnn_util::Scale;

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
using ConvDesc =
    Descriptor<cudnnConvolutionDescriptor_t, cudnnCreateConvolutionDescriptor, cudnnDestroyConvolutionDescriptor>;

int as_int(int64_t v) { return static_cast<int>(v); }

// True when every size and stride fits cuDNN's int descriptors.
bool fits_int(const Tensor& t) {
  for (int64_t d = 0; d < 4; ++d)
    if (t.sizes()[d] > INT32_MAX || t.strides()[d] > INT32_MAX) return false;
  return true;
}

// t itself where cuDNN reads it as laid out (NCHW or channels-last, dense); else a contiguous
// copy (an expanded gradient has zero strides, which cuDNN does not take).
Tensor dense_layout(const Tensor& t) {
  if (t.is_contiguous()) return t;
  const Shape& s = t.sizes();
  const Strides& st = t.strides();
  const bool channels_last = st[1] == 1 && st[3] == s[1] && st[2] == s[1] * s[3] && st[0] == s[1] * s[2] * s[3];
  return channels_last ? t : t.contiguous();
}

enum class Pass { Forward, BackwardData, BackwardFilter };

// The descriptors of one convolution: x, y (the output, or the gradient of it) and the filter.
struct ConvDescriptors {
  TensorDesc x, y;
  FilterDesc w;
  ConvDesc conv;
  cudnnMathType_t math;

  ConvDescriptors(const Tensor& xt, const Shape& w_shape, const Tensor& yt, const ConvParams& p) {
    set_tensor(x, xt);
    set_tensor(y, yt);
    const DType dtype = xt.dtype();
    EMBER_CUDNN_CHECK(cudnnSetFilter4dDescriptor(w.d, cudnn_type(dtype), CUDNN_TENSOR_NCHW, as_int(w_shape[0]),
                                                 as_int(w_shape[1]), as_int(w_shape[2]), as_int(w_shape[3])));
    const bool is_double = dtype == kFloat64;
    EMBER_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(conv.d, as_int(p.padding[0]), as_int(p.padding[1]),
                                                      as_int(p.stride[0]), as_int(p.stride[1]), as_int(p.dilation[0]),
                                                      as_int(p.dilation[1]), CUDNN_CROSS_CORRELATION,
                                                      is_double ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT));
    EMBER_CUDNN_CHECK(cudnnSetConvolutionGroupCount(conv.d, as_int(p.groups)));
    math = dtype == kFloat32 ? (cuda::allow_tf32() ? CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION : CUDNN_FMA_MATH)
           : is_double       ? CUDNN_DEFAULT_MATH
                             : CUDNN_TENSOR_OP_MATH;
    EMBER_CUDNN_CHECK(cudnnSetConvolutionMathType(conv.d, math));
  }

  static void set_tensor(const TensorDesc& desc, const Tensor& t) {
    const Shape& s = t.sizes();
    const Strides& st = t.strides();
    EMBER_CUDNN_CHECK(cudnnSetTensor4dDescriptorEx(desc.d, cudnn_type(t.dtype()), as_int(s[0]), as_int(s[1]),
                                                   as_int(s[2]), as_int(s[3]), as_int(st[0]), as_int(st[1]),
                                                   as_int(st[2]), as_int(st[3])));
  }
};

// The three tensors of a pass: x (or dx), w (or dw), y (or dy).
struct Buffers {
  void* x;
  void* w;
  void* y;
};

// Per pass: cuDNN's heuristic query, its timing query, and the algorithms whose rounding is
// further from a direct sum's (FFT and non-fused Winograd), skipped under cuda::cudnn_exact().
template <Pass P>
struct PassTraits;

template <>
struct PassTraits<Pass::Forward> {
  using Perf = cudnnConvolutionFwdAlgoPerf_t;
  using Algo = cudnnConvolutionFwdAlgo_t;
  static constexpr int kCount = CUDNN_CONVOLUTION_FWD_ALGO_COUNT;
  static cudnnStatus_t heuristics(cudnnHandle_t h, const ConvDescriptors& d, int* found, Perf* perf) {
    return cudnnGetConvolutionForwardAlgorithm_v7(h, d.x.d, d.w.d, d.conv.d, d.y.d, kCount, found, perf);
  }
  static cudnnStatus_t timed(cudnnHandle_t h, const ConvDescriptors& d, const Buffers& b, int* found, Perf* perf,
                             void* ws, size_t bytes) {
    return cudnnFindConvolutionForwardAlgorithmEx(h, d.x.d, b.x, d.w.d, b.w, d.conv.d, d.y.d, b.y, kCount, found, perf,
                                                  ws, bytes);
  }
  static bool inexact(Algo a) {
    return a == CUDNN_CONVOLUTION_FWD_ALGO_FFT || a == CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING ||
           a == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED;
  }
};

template <>
struct PassTraits<Pass::BackwardData> {
  using Perf = cudnnConvolutionBwdDataAlgoPerf_t;
  using Algo = cudnnConvolutionBwdDataAlgo_t;
  static constexpr int kCount = CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT;
  static cudnnStatus_t heuristics(cudnnHandle_t h, const ConvDescriptors& d, int* found, Perf* perf) {
    return cudnnGetConvolutionBackwardDataAlgorithm_v7(h, d.w.d, d.y.d, d.conv.d, d.x.d, kCount, found, perf);
  }
  static cudnnStatus_t timed(cudnnHandle_t h, const ConvDescriptors& d, const Buffers& b, int* found, Perf* perf,
                             void* ws, size_t bytes) {
    return cudnnFindConvolutionBackwardDataAlgorithmEx(h, d.w.d, b.w, d.y.d, b.y, d.conv.d, d.x.d, b.x, kCount, found,
                                                       perf, ws, bytes);
  }
  static bool inexact(Algo a) {
    return a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT || a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING ||
           a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED;
  }
};

template <>
struct PassTraits<Pass::BackwardFilter> {
  using Perf = cudnnConvolutionBwdFilterAlgoPerf_t;
  using Algo = cudnnConvolutionBwdFilterAlgo_t;
  static constexpr int kCount = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT;
  static cudnnStatus_t heuristics(cudnnHandle_t h, const ConvDescriptors& d, int* found, Perf* perf) {
    return cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, d.x.d, d.y.d, d.conv.d, d.w.d, kCount, found, perf);
  }
  static cudnnStatus_t timed(cudnnHandle_t h, const ConvDescriptors& d, const Buffers& b, int* found, Perf* perf,
                             void* ws, size_t bytes) {
    return cudnnFindConvolutionBackwardFilterAlgorithmEx(h, d.x.d, b.x, d.y.d, b.y, d.conv.d, d.w.d, b.w, kCount, found,
                                                         perf, ws, bytes);
  }
  static bool inexact(Algo a) {
    return a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT || a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING ||
           a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED;
  }
};

// A pass's descriptors and algorithm for one configuration, made once and cached: building
// descriptors costs several cuDNN calls per convolution, which dominated small batches.
struct Plan {
  ConvDescriptors d;
  int algo = 0;
  size_t workspace = 0;
  bool supported = false;  // false: no cuDNN algorithm; the public-op form runs instead
  Plan(const Tensor& x, const Shape& w_shape, const Tensor& y, const ConvParams& p) : d(x, w_shape, y, p) {}
};

// Everything a plan depends on: pass, device, dtype, x and y layouts, weight shape, geometry,
// TF32, benchmark and exact switches.
using Key =
    std::tuple<int, int, DType, Shape, Strides, Shape, Strides, Shape, Pair2, Pair2, Pair2, int64_t, bool, bool, bool>;

std::mutex cache_mutex;
std::map<Key, std::unique_ptr<Plan>>& cache() {
  static std::map<Key, std::unique_ptr<Plan>> c;
  return c;
}

size_t free_device_memory(int device) {
  size_t free_bytes = 0, total = 0;
  cuda::DeviceGuard guard(device);
  if (cudaMemGetInfo(&free_bytes, &total) != cudaSuccess) return 0;
  return free_bytes;
}

// The plan for a pass over x (dx), w (dw) and y (dy); `b` holds their data for timing runs.
template <Pass P>
const Plan& plan_for(cudnnHandle_t h, const Tensor& x, const Shape& w_shape, const Tensor& y, const ConvParams& p,
                     const Buffers& b) {
  using T = PassTraits<P>;
  const int device = x.device().index;
  const bool benchmark = cuda::cudnn_benchmark(), exact_only = cuda::cudnn_exact();
  const Key key{static_cast<int>(P), device,    x.dtype(), x.sizes(), x.strides(), y.sizes(),
                y.strides(),         w_shape,   p.stride,  p.padding, p.dilation,  p.groups,
                cuda::allow_tf32(),  benchmark, exact_only};
  std::lock_guard<std::mutex> lock(cache_mutex);  // held while choosing: timing runs must not overlap
  auto it = cache().find(key);
  if (it != cache().end()) return *it->second;
  auto plan = std::make_unique<Plan>(x, w_shape, y, p);
  typename T::Perf perf[T::kCount];
  int found = 0;
  const size_t budget = free_device_memory(device) / 2;
  if (benchmark) {
    // cuDNN times every algorithm whose workspace fits the budget (at most 1 GiB here).
    const size_t bytes = std::min<size_t>(budget, size_t{1} << 30);
    Tensor ws = bytes > 0 ? empty({static_cast<int64_t>(bytes)}, {kUInt8, x.device()}) : Tensor();
    EMBER_CUDNN_CHECK(T::timed(h, plan->d, b, &found, perf, data_or_null(ws), bytes));
  } else {
    EMBER_CUDNN_CHECK(T::heuristics(h, plan->d, &found, perf));
  }
  // The first in cuDNN's order (fastest measured, or heuristics' preference) that succeeded,
  // fits the budget and, under cudnn_exact for float32 and float64, sums directly.
  const bool exact = (x.dtype() == kFloat32 || x.dtype() == kFloat64) && exact_only;
  for (int i = 0; i < found && !plan->supported; ++i) {
    if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].memory > budget) continue;
    if (exact && T::inexact(perf[i].algo)) continue;
    plan->algo = static_cast<int>(perf[i].algo);
    plan->workspace = perf[i].memory;
    plan->supported = true;
  }
  if (std::getenv("EMBER_CUDNN_LOG"))
    std::fprintf(stderr, "cudnn plan: pass %d x %s w %s algo %d workspace %zu (%d candidates)\n", static_cast<int>(P),
                 shape_str(x.sizes()).c_str(), shape_str(w_shape).c_str(), plan->supported ? plan->algo : -1,
                 plan->workspace, found);
  return *cache().emplace(key, std::move(plan)).first->second;
}

// A 1×1 convolution with stride 1, no padding and one group over a contiguous NCHW input is a
// batched matrix product, y[n] = W · x[n] (and dx[n] = Wᵀ · dy[n]), which cuBLAS runs faster
// than the legacy API's heuristic pick. EMBER_CONV1X1_GEMM=0 sends these to cuDNN too.
bool pointwise(const Tensor& x, const Shape& w_shape, const ConvParams& p) {
  static const bool enabled = [] {
    const char* v = std::getenv("EMBER_CONV1X1_GEMM");
    return v == nullptr || std::string(v) != "0";
  }();
  return enabled && w_shape[2] == 1 && w_shape[3] == 1 && p.groups == 1 && p.stride == Pair2{1, 1} &&
         p.padding == Pair2{0, 0} && x.is_contiguous();
}

// out [N, M, H, W] = weight [M, K] (a matrix view) times each of x's N [K, H·W] planes.
void pointwise_product(const Tensor& weight, const Tensor& x, const Tensor& out) {
  const int64_t n = x.sizes()[0], k = x.sizes()[1], plane = x.sizes()[2] * x.sizes()[3], m = out.sizes()[1];
  GemmOp gemm;
  gemm.forward_cuda({weight.unsqueeze(0).expand({n, m, k}), x.view({n, k, plane})}, {out.view({n, m, plane})});
}

Tensor workspace_for(const Plan& plan, Device device) {
  return plan.workspace > 0 ? empty({static_cast<int64_t>(plan.workspace)}, {kUInt8, device}) : Tensor();
}

}  // namespace

void Conv2dOp::forward_cuda(const TensorList& inputs, const TensorList& outputs) {
  const ConvParams& p = params;
  const Tensor x = dense_layout(inputs[0]);
  const Tensor w = inputs[1].contiguous();
  const Tensor& bias = inputs[2];
  const Tensor& y = outputs[0];
  if (x.numel() == 0 || y.numel() == 0) {
    fill_(y, 0);
    return;
  }
  if (pointwise(x, w.sizes(), p) && y.is_contiguous()) {
    pointwise_product(w.view({w.sizes()[0], w.sizes()[1]}), x, y);
    if (bias.defined()) add_(y, bias.reshape({1, bias.sizes()[0], 1, 1}));
    return;
  }
  auto reference = [&] { copy_(y, conv2d_reference(x, w, bias, p.stride, p.padding, p.dilation, p.groups)); };
  if (!fits_int(x) || !fits_int(w) || !fits_int(y)) return reference();  // cuDNN's descriptors hold ints
  cudnnHandle_t h = cuda_detail::cudnn_handle(x.device().index);
  const Plan& plan = plan_for<Pass::Forward>(h, x, w.sizes(), y, p, {x.data(), w.data(), y.data()});
  if (!plan.supported) return reference();  // no cuDNN kernel: public ops, still on the GPU
  Tensor ws = workspace_for(plan, x.device());
  const Scale s(x.dtype());
  const cudnnStatus_t status = cudnnConvolutionForward(h, s.one, plan.d.x.d, x.data(), plan.d.w.d, w.data(),
                                                       plan.d.conv.d, static_cast<cudnnConvolutionFwdAlgo_t>(plan.algo),
                                                       data_or_null(ws), plan.workspace, s.zero, plan.d.y.d, y.data());
  if (status == CUDNN_STATUS_NOT_SUPPORTED) return reference();
  EMBER_CUDNN_CHECK(status);
  if (bias.defined()) add_(y, bias.reshape({1, bias.sizes()[0], 1, 1}));
}

void Conv2dBackwardDataOp::forward_cuda(const TensorList& inputs, const TensorList& outputs) {
  // dx is allocated NCHW: the gradient is read in the same layout.
  const Tensor g = inputs[0].contiguous();
  const Tensor w = inputs[1].contiguous();
  const Tensor& dx = outputs[0];
  if (g.numel() == 0 || dx.numel() == 0) {
    fill_(dx, 0);
    return;
  }
  if (pointwise(dx, w.sizes(), params) && dx.is_contiguous())
    return pointwise_product(w.view({w.sizes()[0], w.sizes()[1]}).transpose(0, 1), g, dx);
  auto reference = [&] { copy_(dx, conv2d_input_grad_reference(g, w, dx.sizes(), params)); };
  if (!fits_int(g) || !fits_int(w) || !fits_int(dx)) return reference();
  cudnnHandle_t h = cuda_detail::cudnn_handle(g.device().index);
  const Plan& plan = plan_for<Pass::BackwardData>(h, dx, w.sizes(), g, params, {dx.data(), w.data(), g.data()});
  if (!plan.supported) return reference();
  Tensor ws = workspace_for(plan, g.device());
  const Scale s(g.dtype());
  const cudnnStatus_t status =
      cudnnConvolutionBackwardData(h, s.one, plan.d.w.d, w.data(), plan.d.y.d, g.data(), plan.d.conv.d,
                                   static_cast<cudnnConvolutionBwdDataAlgo_t>(plan.algo), data_or_null(ws),
                                   plan.workspace, s.zero, plan.d.x.d, dx.data());
  if (status == CUDNN_STATUS_NOT_SUPPORTED) return reference();
  EMBER_CUDNN_CHECK(status);
}

void Conv2dBackwardFilterOp::forward_cuda(const TensorList& inputs, const TensorList& outputs) {
  // x and the gradient in one layout: cuDNN has no kernel for a mix.
  Tensor x = dense_layout(inputs[0]);
  Tensor g = dense_layout(inputs[1]);
  if (x.is_contiguous() != g.is_contiguous()) {
    x = x.contiguous();
    g = g.contiguous();
  }
  const Tensor& dw = outputs[0];
  if (x.numel() == 0 || g.numel() == 0) {
    fill_(dw, 0);
    return;
  }
  auto reference = [&] { copy_(dw, conv2d_weight_grad_reference(x, g, dw.sizes(), params)); };
  if (!fits_int(x) || !fits_int(g) || !fits_int(dw)) return reference();
  cudnnHandle_t h = cuda_detail::cudnn_handle(x.device().index);
  const Plan& plan = plan_for<Pass::BackwardFilter>(h, x, dw.sizes(), g, params, {x.data(), dw.data(), g.data()});
  if (!plan.supported) return reference();
  Tensor ws = workspace_for(plan, x.device());
  const Scale s(x.dtype());
  const cudnnStatus_t status =
      cudnnConvolutionBackwardFilter(h, s.one, plan.d.x.d, x.data(), plan.d.y.d, g.data(), plan.d.conv.d,
                                     static_cast<cudnnConvolutionBwdFilterAlgo_t>(plan.algo), data_or_null(ws),
                                     plan.workspace, s.zero, plan.d.w.d, dw.data());
  if (status == CUDNN_STATUS_NOT_SUPPORTED) return reference();
  EMBER_CUDNN_CHECK(status);
}

}  // namespace ember
