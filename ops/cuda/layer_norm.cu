// CUDA kernels of layer norm and RMS norm (and of a residual add fused with layer norm): a warp per row up to 1024 elements, a block per row
// past that (cuda_ops::rows). Forward: the row's mean, its variance about the mean (a second
// pass over the row, which is in cache), then the output; backward: Σ g·w and Σ g·w·x̂, then dx.
#include "ops/cuda/loops.cuh"
#include "ops/cuda/row_reduce.cuh"
#include "ops/layer_norm.h"

namespace ember {

namespace {

using cuda_ops::convert;
using namespace cuda_ops::rows;

template <typename A>
struct SumMerge {
  __device__ A warp(A p) const { return cuda_ops::warp_sum(p); }
  __device__ A operator()(A p, A q) const { return p + q; }
};

template <typename A>
struct Pair {
  A a, b;
};

template <typename A>
struct PairMerge {
  __device__ Pair<A> warp(Pair<A> p) const { return {cuda_ops::warp_sum(p.a), cuda_ops::warp_sum(p.b)}; }
  __device__ Pair<A> operator()(Pair<A> p, Pair<A> q) const { return {p.a + q.a, p.b + q.b}; }
};

// With a residual, the row normalised is x + res: written to `sum` first (rounded to T, as a
// separate add writes it) and read back from there by the thread that wrote it. mean_out and
// rstd_out are optional.
template <typename T, Layout L>
__global__ void __launch_bounds__(cuda_ops::kBlock)
    forward_kernel(const T* __restrict__ x, const T* __restrict__ res, const T* __restrict__ w,
                   const T* __restrict__ b, T* __restrict__ y, T* sum, cuda_ops::acc_t<T>* mean_out,
                   cuda_ops::acc_t<T>* rstd_out, Shape3 s, bool rms, double eps) {
  using A = cuda_ops::acc_t<T>;
  RowSlot r;
  if (!row_slot<L>(s, r)) return;
  const A m = static_cast<A>(s.size);
  const T* src = x;
  if (res) {
    for (int64_t i = r.first; i < s.size; i += r.step)
      sum[r.start + i] = convert<T>(convert<A>(x[r.start + i]) + convert<A>(res[r.start + i]));
    src = sum;
  }
  A mean = 0;
  if (!rms) {
    A part = 0;
    for (int64_t i = r.first; i < s.size; i += r.step) part += convert<A>(src[r.start + i]);
    mean = reduce_row<L>(part, SumMerge<A>{}) / m;
  }
  A part = 0;
  for (int64_t i = r.first; i < s.size; i += r.step) {
    const A d = convert<A>(src[r.start + i]) - mean;
    part += d * d;
  }
  const A rstd = A(1) / sqrt(reduce_row<L>(part, SumMerge<A>{}) / m + static_cast<A>(eps));
  if (r.first == 0 && mean_out) {
    const int64_t row = r.start / s.size;
    mean_out[row] = mean;
    rstd_out[row] = rstd;
  }
  for (int64_t i = r.first; i < s.size; i += r.step) {
    A v = (convert<A>(src[r.start + i]) - mean) * rstd;
    if (w) v *= convert<A>(w[i]);
    if (b) v += convert<A>(b[i]);
    y[r.start + i] = convert<T>(v);
  }
}

template <typename T, Layout L>
__global__ void __launch_bounds__(cuda_ops::kBlock)
    backward_kernel(const T* __restrict__ x, const T* __restrict__ g, const T* __restrict__ w,
                    const cuda_ops::acc_t<T>* mean, const cuda_ops::acc_t<T>* rstd, T* __restrict__ dx, Shape3 s,
                    bool rms) {
  using A = cuda_ops::acc_t<T>;
  RowSlot r;
  if (!row_slot<L>(s, r)) return;
  const int64_t row = r.start / s.size;
  const A mu = mean[row], rs = rstd[row], m = static_cast<A>(s.size);
  Pair<A> part{0, 0};
  for (int64_t i = r.first; i < s.size; i += r.step) {
    const A gw = convert<A>(g[r.start + i]) * (w ? convert<A>(w[i]) : A(1));
    part.a += gw;
    part.b += gw * (convert<A>(x[r.start + i]) - mu) * rs;
  }
  const Pair<A> total = reduce_row<L>(part, PairMerge<A>{});
  const A mean_gw = rms ? A(0) : total.a / m, mean_gw_xhat = total.b / m;
  for (int64_t i = r.first; i < s.size; i += r.step) {
    const A gw = convert<A>(g[r.start + i]) * (w ? convert<A>(w[i]) : A(1));
    const A xhat = (convert<A>(x[r.start + i]) - mu) * rs;
    dx[r.start + i] = convert<T>(rs * (gw - mean_gw - xhat * mean_gw_xhat));
  }
}

template <typename T, Layout L>
struct ForwardLaunch {
  using A = cuda_ops::acc_t<T>;
  static void run(unsigned blocks, cudaStream_t stream, Shape3 s, const T* x, const T* res, const T* w, const T* b,
                  T* y, T* sum, A* mean, A* rstd, bool rms, double eps) {
    forward_kernel<T, L><<<blocks, cuda_ops::kBlock, 0, stream>>>(x, res, w, b, y, sum, mean, rstd, s, rms, eps);
  }
};

template <typename T, Layout L>
struct BackwardLaunch {
  using A = cuda_ops::acc_t<T>;
  static void run(unsigned blocks, cudaStream_t stream, Shape3 s, const T* x, const T* g, const T* w, const A* mean,
                  const A* rstd, T* dx, bool rms) {
    backward_kernel<T, L><<<blocks, cuda_ops::kBlock, 0, stream>>>(x, g, w, mean, rstd, dx, s, rms);
  }
};

template <typename T>
const T* optional_data(const Tensor& t) {
  return t.defined() ? t.data_ptr<T>() : nullptr;
}

RowGeometry rows_of(const Tensor& x) { return {x.sizes()[0], x.sizes()[1], 1}; }

}  // namespace

void LayerNormOp::forward_cuda(const TensorList& inputs, const TensorList& outputs) {
  cudaStream_t stream = cuda_detail::stream(inputs[0].device().index);
  cuda_ops::dispatch<kFloatingSet>(inputs[0].dtype(), name(), [&]<typename T>() {
    using A = cuda_ops::acc_t<T>;
    launch_rows<ForwardLaunch, T>(rows_of(inputs[0]), stream, inputs[0].data_ptr<const T>(), static_cast<const T*>(nullptr),
                                  optional_data<T>(inputs[1]), optional_data<T>(inputs[2]), outputs[0].data_ptr<T>(),
                                  static_cast<T*>(nullptr), outputs[1].data_ptr<A>(), outputs[2].data_ptr<A>(), rms, eps);
  });
}

void AddLayerNormOp::forward_cuda(const TensorList& inputs, const TensorList& outputs) {
  cudaStream_t stream = cuda_detail::stream(inputs[0].device().index);
  cuda_ops::dispatch<kFloatingSet>(inputs[0].dtype(), name(), [&]<typename T>() {
    using A = cuda_ops::acc_t<T>;
    launch_rows<ForwardLaunch, T>(rows_of(inputs[0]), stream, inputs[0].data_ptr<const T>(), inputs[1].data_ptr<const T>(),
                                  optional_data<T>(inputs[2]), optional_data<T>(inputs[3]), outputs[0].data_ptr<T>(),
                                  outputs[1].data_ptr<T>(), static_cast<A*>(nullptr), static_cast<A*>(nullptr), false,
                                  eps);
  });
}

void LayerNormBackwardOp::forward_cuda(const TensorList& inputs, const TensorList& outputs) {
  cudaStream_t stream = cuda_detail::stream(inputs[0].device().index);
  cuda_ops::dispatch<kFloatingSet>(inputs[0].dtype(), name(), [&]<typename T>() {
    using A = cuda_ops::acc_t<T>;
    launch_rows<BackwardLaunch, T>(rows_of(inputs[0]), stream, inputs[0].data_ptr<const T>(),
                                   inputs[1].data_ptr<const T>(), optional_data<T>(inputs[2]),
                                   inputs[3].data_ptr<const A>(), inputs[4].data_ptr<const A>(),
                                   outputs[0].data_ptr<T>(), rms);
  });
}

}  // namespace ember
