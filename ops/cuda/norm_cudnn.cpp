// BatchNormOp and its backward on CUDA through cuDNN's spatial batch norm (per channel over N
// and every spatial position), as PyTorch does for these inputs. cuDNN takes float32 or float64
// activations with per-channel tensors of the same dtype; other combinations (half types, mixed
// dtypes) and sizes past cuDNN's ints run the public-op form, still on the GPU.
#include <climits>

#include "ops/copy.h"
#include "ops/creation.h"
#include "ops/cuda/cudnn_util.h"
#include "ops/norm.h"
#include "runtime/cuda/handles.h"
#include "runtime/error.h"

// The legacy batch-norm API is deprecated in cuDNN 9 in favour of the graph API, but present and
// supported.
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace ember {

namespace {

using cudnn_util::data_or_null;
using cudnn_util::Scale;

struct TensorDesc {
  cudnnTensorDescriptor_t d = nullptr;
  TensorDesc() { EMBER_CUDNN_CHECK(cudnnCreateTensorDescriptor(&d)); }
  ~TensorDesc() { cudnnDestroyTensorDescriptor(d); }
  TensorDesc(const TensorDesc&) = delete;
  TensorDesc& operator=(const TensorDesc&) = delete;
};

// True when cuDNN's kernels apply: float32/float64 x, per-channel tensors of x's dtype, every
// size within int.
bool cudnn_applies(const Tensor& x, const TensorList& per_channel) {
  if (x.dtype() != kFloat32 && x.dtype() != kFloat64) return false;
  if (x.numel() > INT32_MAX || x.numel() == 0) return false;
  for (const Tensor& t : per_channel)
    if (t.defined() && (t.dtype() != x.dtype() || !t.is_contiguous())) return false;
  return true;
}

// A contiguous x [N, C, ...] as the 4-d [N, C, S, 1] cuDNN's spatial mode normalises per channel.
void set_activation(const TensorDesc& desc, const Tensor& x) {
  const int n = static_cast<int>(x.sizes()[0]), c = static_cast<int>(x.sizes()[1]);
  const int s = static_cast<int>(x.numel() / (x.sizes()[0] * x.sizes()[1]));
  EMBER_CUDNN_CHECK(cudnnSetTensor4dDescriptor(
      desc.d, CUDNN_TENSOR_NCHW, x.dtype() == kFloat64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT, n, c, s, 1));
}

// cuDNN needs a scale and a shift even when the module has none.
Tensor or_filled(const Tensor& t, int64_t c, double value, const Tensor& like) {
  return t.defined() ? t : full({c}, value, {like.dtype(), like.device()});
}

constexpr cudnnBatchNormMode_t kMode = CUDNN_BATCHNORM_SPATIAL;

}  // namespace

void BatchNormOp::forward_cuda(const TensorList& inputs, const TensorList& outputs) {
  const Tensor& weight = inputs[1];
  const Tensor& bias = inputs[2];
  if (!cudnn_applies(inputs[0], {weight, bias, running_mean, running_var})) {
    TensorList r =
        batch_norm_forward_reference(inputs[0], weight, bias, training, momentum, eps, running_mean, running_var);
    for (size_t i = 0; i < outputs.size(); ++i) copy_(outputs[i], r[i]);
    return;
  }
  const Tensor x = inputs[0].contiguous();
  const int64_t c = x.sizes()[1];
  const Tensor scale = or_filled(weight, c, 1.0, x), shift = or_filled(bias, c, 0.0, x);
  cudnnHandle_t h = cuda_detail::cudnn_handle(x.device().index);
  TensorDesc xd, bnd;
  set_activation(xd, x);
  EMBER_CUDNN_CHECK(cudnnDeriveBNTensorDescriptor(bnd.d, xd.d, kMode));
  const Scale s(x.dtype());
  if (!training) {
    EMBER_CUDNN_CHECK(cudnnBatchNormalizationForwardInference(h, kMode, s.one, s.zero, xd.d, x.data(), xd.d,
                                                              outputs[0].data(), bnd.d, scale.data(), shift.data(),
                                                              running_mean.data(), running_var.data(), eps));
    return;
  }
  EMBER_CUDNN_CHECK(cudnnBatchNormalizationForwardTraining(
      h, kMode, s.one, s.zero, xd.d, x.data(), xd.d, outputs[0].data(), bnd.d, scale.data(), shift.data(), momentum,
      data_or_null(running_mean), data_or_null(running_var), eps, outputs[1].data(), outputs[2].data()));
}

void BatchNormBackwardOp::forward_cuda(const TensorList& inputs, const TensorList& outputs) {
  const Tensor& weight = inputs[2];
  if (!cudnn_applies(inputs[0], {weight, inputs[3], inputs[4]})) {
    TensorList r = batch_norm_backward_reference(inputs[0], inputs[1], weight, inputs[3], inputs[4]);
    for (size_t i = 0; i < outputs.size(); ++i) copy_(outputs[i], r[i]);
    return;
  }
  const Tensor x = inputs[0].contiguous();
  const Tensor g = inputs[1].contiguous();
  const Tensor scale = or_filled(weight, x.sizes()[1], 1.0, x);
  cudnnHandle_t h = cuda_detail::cudnn_handle(x.device().index);
  TensorDesc xd, bnd;
  set_activation(xd, x);
  EMBER_CUDNN_CHECK(cudnnDeriveBNTensorDescriptor(bnd.d, xd.d, kMode));
  const Scale s(x.dtype());
  EMBER_CUDNN_CHECK(cudnnBatchNormalizationBackward(
      h, kMode, s.one, s.zero, s.one, s.zero, xd.d, x.data(), xd.d, g.data(), xd.d, outputs[0].data(), bnd.d,
      scale.data(), outputs[1].data(), outputs[2].data(), eps, inputs[3].data(), inputs[4].data()));
}

}  // namespace ember
