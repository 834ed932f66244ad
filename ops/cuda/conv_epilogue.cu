// CUDA kernel of ConvEpilogueOp: a convolution's bias, residual and clamp (relu) in one pass
// over its contiguous NCHW output, after cuDNN's or cuBLAS's product.
#include "ops/conv.h"
#include "ops/cuda/loops.cuh"
#include "runtime/cuda/check.h"

namespace ember {

namespace {

struct Epilogue {
  int64_t total, hw, channels;
  bool has_lo, has_hi;
  float lo, hi;
};

// Below this the index and the channel arithmetic run in int32 (64-bit division costs several
// times more), with a margin for the grid-stride loop's last step.
constexpr int64_t kInt32Limit = int64_t{1} << 30;

template <typename T, typename I>
__global__ void __launch_bounds__(cuda_ops::kBlock)
    conv_epilogue(T* __restrict__ y, const T* __restrict__ bias, const T* __restrict__ residual, Epilogue e) {
  using A = cuda_ops::opmath_t<T>;
  const I total = static_cast<I>(e.total), hw = static_cast<I>(e.hw), channels = static_cast<I>(e.channels);
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<I>(gridDim.x) * blockDim.x) {
    A v = static_cast<A>(y[i]);
    if (bias) v += static_cast<A>(bias[(i / hw) % channels]);
    if (residual) v += static_cast<A>(residual[i]);
    // Comparisons false for NaN: a NaN stays NaN, as in relu and clamp.
    if (e.has_lo && v < static_cast<A>(e.lo)) v = static_cast<A>(e.lo);
    if (e.has_hi && v > static_cast<A>(e.hi)) v = static_cast<A>(e.hi);
    y[i] = static_cast<T>(v);
  }
}

}  // namespace

void ConvEpilogueOp::forward_cuda(const TensorList& inputs, const TensorList& outputs) {
  const Tensor& y = outputs[0];
  const Tensor& bias = inputs[1];
  const Tensor& residual = inputs[2];
  const Epilogue e{y.numel(),       y.sizes()[2] * y.sizes()[3], y.sizes()[1], lo.has_value(), hi.has_value(),
                   float(lo.value_or(0)), float(hi.value_or(0))};
  if (e.total == 0) return;
  const int device = y.device().index;
  cudaStream_t stream = cuda_detail::stream(device);
  cuda_ops::dispatch<kFloatingSet>(y.dtype(), name(), [&]<typename T>() {
    const T* b = bias.defined() ? bias.data_ptr<T>() : nullptr;
    const T* r = residual.defined() ? residual.data_ptr<T>() : nullptr;
    const dim3 grid(cuda_ops::grid_for(e.total, device)), block(cuda_ops::kBlock);
    if (e.total < kInt32Limit) conv_epilogue<T, int32_t><<<grid, block, 0, stream>>>(y.data_ptr<T>(), b, r, e);
    else conv_epilogue<T, int64_t><<<grid, block, 0, stream>>>(y.data_ptr<T>(), b, r, e);
    EMBER_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace ember
