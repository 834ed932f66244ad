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

template <typename T>
__global__ void __launch_bounds__(cuda_ops::kBlock)
    max_pool_forward(const T* __restrict__ x, T* __restrict__ y, int64_t* __restrict__ indices, Geometry2d g) {
  using A = cuda_ops::opmath_t<T>;
  const int64_t total = g.planes * g.oh * g.ow;
  for (int64_t o = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; o < total; o += int64_t{gridDim.x} * blockDim.x) {
    const int64_t ow = o % g.ow, oh = (o / g.ow) % g.oh, plane = o / (g.ow * g.oh);
    const T* in = x + plane * g.h * g.w;
    int64_t h0 = oh * g.sh - g.ph, w0 = ow * g.sw - g.pw;
    // Windows start inside the input (ceil_mode drops the others): skip the padded rows first.
    while (h0 < 0) h0 += g.dh;
    while (w0 < 0) w0 += g.dw;
    const int64_t h1 = min(oh * g.sh - g.ph + int64_t{g.dh} * (g.kh - 1) + 1, g.h);
    const int64_t w1 = min(ow * g.sw - g.pw + int64_t{g.dw} * (g.kw - 1) + 1, g.w);
    A best = -INFINITY;
    int64_t arg = h0 * g.w + w0;
    for (int64_t r = h0; r < h1; r += g.dh)
      for (int64_t c = w0; c < w1; c += g.dw) {
        const A v = cuda_ops::convert<A>(in[r * g.w + c]);
        if (v > best || isnan(v)) {  // the first maximum; a NaN wins, as in PyTorch
          best = v;
          arg = r * g.w + c;
        }
      }
    y[o] = cuda_ops::convert<T>(best);
    indices[o] = arg;
  }
}

template <typename T>
__global__ void __launch_bounds__(cuda_ops::kBlock)
    max_pool_backward(const T* __restrict__ grad, const int64_t* __restrict__ indices, T* __restrict__ dx,
                      Geometry2d g) {
  using A = cuda_ops::acc_t<T>;
  const int64_t total = g.planes * g.h * g.w;
  for (int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < total; i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t c = i % g.w, r = (i / g.w) % g.h, plane = i / (g.w * g.h);
    // The windows that can contain (r, c): those starting at most one kernel span before it.
    const int64_t span_h = int64_t{g.dh} * (g.kh - 1) + 1, span_w = int64_t{g.dw} * (g.kw - 1) + 1;
    const int64_t oh0 = r + g.ph < span_h ? 0 : (r + g.ph - span_h) / g.sh + 1;
    const int64_t ow0 = c + g.pw < span_w ? 0 : (c + g.pw - span_w) / g.sw + 1;
    const int64_t oh1 = min((r + g.ph) / g.sh + 1, g.oh), ow1 = min((c + g.pw) / g.sw + 1, g.ow);
    const int64_t base = plane * g.oh * g.ow, self = r * g.w + c;
    A sum = 0;
    for (int64_t oh = oh0; oh < oh1; ++oh)
      for (int64_t ow = ow0; ow < ow1; ++ow)
        if (indices[base + oh * g.ow + ow] == self) sum += cuda_ops::convert<A>(grad[base + oh * g.ow + ow]);
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
  cuda_ops::dispatch<kFloatingSet>(x.dtype(), name(), [&]<typename T>() {
    max_pool_forward<T><<<cuda_ops::grid_for(total, device), cuda_ops::kBlock, 0, stream>>>(
        x.data_ptr<T>(), outputs[0].data_ptr<T>(), outputs[1].data_ptr<int64_t>(), g);
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
  cuda_ops::dispatch<kFloatingSet>(dx.dtype(), name(), [&]<typename T>() {
    max_pool_backward<T><<<cuda_ops::grid_for(total, device), cuda_ops::kBlock, 0, stream>>>(
        grad.data_ptr<T>(), indices.data_ptr<int64_t>(), dx.data_ptr<T>(), g);
    EMBER_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace ember
