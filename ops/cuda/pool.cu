// CUDA kernels of MaxPool2dOp: forward, one thread per output element scanning its window;
// backward, one thread per input element summing the gradients of the windows whose maximum it
// was (a gather: deterministic, no atomics). Both read NCHW-contiguous tensors.
#include <cmath>

#include "ops/copy.h"
#include "ops/cuda/loops.cuh"
#include "ops/pool.h"
#include "runtime/cuda/check.h"

namespace ember {

namespace {

// Below this, every offset and the grid-stride loop's index fit int32 (with a margin for the
// loop's last step past the end).
constexpr int64_t kInt32Limit = int64_t{1} << 30;

struct Geometry2d {
  int64_t planes, h, w, oh, ow;  // planes = N·C
  int kh, kw, sh, sw, ph, pw, dh, dw;
};

Geometry2d geometry(const Shape& in, const Shape& out, const PoolParams& p) {
  auto i = [](int64_t v) { return static_cast<int>(v); };
  return {in[0] * in[1],   in[2],          in[3],          out[2],          out[3],          i(p.kernel[0]),
          i(p.kernel[1]),  i(p.stride[0]), i(p.stride[1]), i(p.padding[0]), i(p.padding[1]), i(p.dilation[0]),
          i(p.dilation[1])};
}

// I: the index type, int32 where every offset fits (64-bit division costs several times more).
template <typename T, typename I>
__global__ void __launch_bounds__(cuda_ops::kBlock)
    max_pool_forward(const T* __restrict__ x, T* __restrict__ y, int64_t* __restrict__ indices, Geometry2d geo) {
  using A = cuda_ops::opmath_t<T>;
  const I oh_n = static_cast<I>(geo.oh), ow_n = static_cast<I>(geo.ow), h = static_cast<I>(geo.h),
          w = static_cast<I>(geo.w);
  const I total = static_cast<I>(geo.planes) * oh_n * ow_n;
  for (I o = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; o < total;
       o += static_cast<I>(gridDim.x) * blockDim.x) {
    const I ow = o % ow_n, rest = o / ow_n, oh = rest % oh_n, plane = rest / oh_n;
    const T* in = x + static_cast<int64_t>(plane) * h * w;
    I h0 = oh * geo.sh - geo.ph, w0 = ow * geo.sw - geo.pw;
    // Windows start inside the input (ceil_mode drops the others): skip the padded rows first.
    while (h0 < 0) h0 += geo.dh;
    while (w0 < 0) w0 += geo.dw;
    const I h1 = min(static_cast<I>(oh * geo.sh - geo.ph + geo.dh * (geo.kh - 1) + 1), h);
    const I w1 = min(static_cast<I>(ow * geo.sw - geo.pw + geo.dw * (geo.kw - 1) + 1), w);
    A best = -INFINITY;
    I arg = h0 * w + w0;
    for (I r = h0; r < h1; r += geo.dh)
      for (I c = w0; c < w1; c += geo.dw) {
        const A v = cuda_ops::convert<A>(in[r * w + c]);
        if (v > best || isnan(v)) {  // the first maximum; a NaN wins, as in PyTorch
          best = v;
          arg = r * w + c;
        }
      }
    y[o] = cuda_ops::convert<T>(best);
    indices[o] = arg;
  }
}

template <typename T, typename I>
__global__ void __launch_bounds__(cuda_ops::kBlock)
    max_pool_backward(const T* __restrict__ grad, const int64_t* __restrict__ indices, T* __restrict__ dx,
                      Geometry2d geo) {
  using A = cuda_ops::acc_t<T>;
  const I oh_n = static_cast<I>(geo.oh), ow_n = static_cast<I>(geo.ow), h = static_cast<I>(geo.h),
          w = static_cast<I>(geo.w);
  const I total = static_cast<I>(geo.planes) * h * w;
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<I>(gridDim.x) * blockDim.x) {
    const I c = i % w, rest = i / w, r = rest % h, plane = rest / h;
    // The windows that can contain (r, c): those starting at most one kernel span before it.
    const I span_h = geo.dh * (geo.kh - 1) + 1, span_w = geo.dw * (geo.kw - 1) + 1;
    const I oh0 = r + geo.ph < span_h ? 0 : (r + geo.ph - span_h) / geo.sh + 1;
    const I ow0 = c + geo.pw < span_w ? 0 : (c + geo.pw - span_w) / geo.sw + 1;
    const I oh1 = min(static_cast<I>((r + geo.ph) / geo.sh + 1), oh_n);
    const I ow1 = min(static_cast<I>((c + geo.pw) / geo.sw + 1), ow_n);
    const I base = plane * oh_n * ow_n;
    const int64_t self = static_cast<int64_t>(r) * w + c;
    A sum = 0;
    for (I oh = oh0; oh < oh1; ++oh)
      for (I ow = ow0; ow < ow1; ++ow)
        if (indices[base + oh * ow_n + ow] == self) sum += cuda_ops::convert<A>(grad[base + oh * ow_n + ow]);
    dx[i] = cuda_ops::convert<T>(sum);
  }
}

}  // namespace

void MaxPool2dOp::forward_cuda(const TensorList& inputs, const TensorList& outputs) {
  const Tensor x = inputs[0].contiguous();
  const Geometry2d g = geometry(x.sizes(), outputs[0].sizes(), params);
  const int64_t total = outputs[0].numel();
  if (total == 0) return;
  const int device = x.device().index;
  cudaStream_t stream = cuda_detail::stream(device);
  const bool small = x.numel() < kInt32Limit && total < kInt32Limit;
  cuda_ops::dispatch<kFloatingSet>(x.dtype(), name(), [&]<typename T>() {
    const dim3 grid(cuda_ops::grid_for(total, device)), block(cuda_ops::kBlock);
    if (small)
      max_pool_forward<T, int32_t>
          <<<grid, block, 0, stream>>>(x.data_ptr<T>(), outputs[0].data_ptr<T>(), outputs[1].data_ptr<int64_t>(), g);
    else
      max_pool_forward<T, int64_t>
          <<<grid, block, 0, stream>>>(x.data_ptr<T>(), outputs[0].data_ptr<T>(), outputs[1].data_ptr<int64_t>(), g);
    EMBER_CUDA_CHECK_LAUNCH();
  });
}

void MaxPool2dBackwardOp::forward_cuda(const TensorList& inputs, const TensorList& outputs) {
  const Tensor grad = inputs[0].contiguous();
  const Tensor indices = inputs[1].contiguous();
  const Tensor& dx = outputs[0];
  const Geometry2d g = geometry(dx.sizes(), grad.sizes(), params);
  const int64_t total = dx.numel();
  if (total == 0) return;
  const int device = dx.device().index;
  cudaStream_t stream = cuda_detail::stream(device);
  const bool small = total < kInt32Limit && grad.numel() < kInt32Limit;
  cuda_ops::dispatch<kFloatingSet>(dx.dtype(), name(), [&]<typename T>() {
    const dim3 grid(cuda_ops::grid_for(total, device)), block(cuda_ops::kBlock);
    if (small)
      max_pool_backward<T, int32_t>
          <<<grid, block, 0, stream>>>(grad.data_ptr<T>(), indices.data_ptr<int64_t>(), dx.data_ptr<T>(), g);
    else
      max_pool_backward<T, int64_t>
          <<<grid, block, 0, stream>>>(grad.data_ptr<T>(), indices.data_ptr<int64_t>(), dx.data_ptr<T>(), g);
    EMBER_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace ember
