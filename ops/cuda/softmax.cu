// CUDA kernels of softmax and log-softmax. Rows along the last dim (inner = 1) take a warp each
// up to 1024 elements and a block each past that; rows along another dim (inner > 1) take a
// thread each, neighbouring threads reading neighbouring columns. Forward keeps an online
// softmax (the row read once for max and sum, once to write); backward reads y and g for the
// row's sum, then again to write.
#include "ops/cuda/loops.cuh"
#include "ops/cuda/online_softmax.cuh"
#include "ops/cuda/row_reduce.cuh"
#include "ops/softmax.h"

namespace ember {

namespace {

using cuda_ops::convert;
using cuda_ops::OnlineSoftmax;
using namespace cuda_ops::rows;

// With a causal mask (rows along the last dim only) the row at position i of `causal_rows`
// reads columns up to i; the rest count as −∞ (0 out), as masked_fill and softmax give.
template <typename T, Layout L>
__global__ void __launch_bounds__(cuda_ops::kBlock)
    softmax_kernel(const T* __restrict__ x, T* __restrict__ y, Shape3 s, bool log, double scale, int64_t causal_rows) {
  using A = cuda_ops::acc_t<T>;
  RowSlot r;
  if (!row_slot<L>(s, r)) return;
  const int64_t read = causal_rows > 0 ? std::min(s.size, (r.start / s.size) % causal_rows + 1) : s.size;
  OnlineSoftmax<A> part;
  for (int64_t i = r.first; i < read; i += r.step) part.add(convert<A>(x[r.start + i * r.stride]) * A(scale));
  struct Merge {
    __device__ OnlineSoftmax<A> warp(OnlineSoftmax<A> p) const { return cuda_ops::warp_merge(p); }
    __device__ OnlineSoftmax<A> operator()(OnlineSoftmax<A> p, OnlineSoftmax<A> q) const {
      p.merge(q.max, q.sum);
      return p;
    }
  };
  const OnlineSoftmax<A> total = reduce_row<L>(part, Merge{});
  const A lse = total.max + ::log(total.sum);  // -inf for a row of -inf: NaN out, as PyTorch
  for (int64_t i = r.first; i < s.size; i += r.step) {
    const int64_t at = r.start + i * r.stride;
    if (i >= read) {
      y[at] = convert<T>(log ? A(-INFINITY) : A(0));
      continue;
    }
    const A v = convert<A>(x[at]) * A(scale);
    y[at] = convert<T>(log ? v - lse : ::exp(v - lse));
  }
}

template <typename T, Layout L>
__global__ void __launch_bounds__(cuda_ops::kBlock)
    softmax_backward_kernel(const T* __restrict__ y, const T* __restrict__ g, T* __restrict__ dx, Shape3 s, bool log,
                            double scale) {
  using A = cuda_ops::acc_t<T>;
  RowSlot r;
  if (!row_slot<L>(s, r)) return;
  A part = 0;
  for (int64_t i = r.first; i < s.size; i += r.step) {
    const int64_t at = r.start + i * r.stride;
    part += log ? convert<A>(g[at]) : convert<A>(g[at]) * convert<A>(y[at]);
  }
  struct Merge {
    __device__ A warp(A p) const { return cuda_ops::warp_sum(p); }
    __device__ A operator()(A p, A q) const { return p + q; }
  };
  const A total = reduce_row<L>(part, Merge{});
  for (int64_t i = r.first; i < s.size; i += r.step) {
    const int64_t at = r.start + i * r.stride;
    const A yv = convert<A>(y[at]), gv = convert<A>(g[at]);
    dx[at] = convert<T>(log ? gv - ::exp(yv) * total : A(scale) * yv * (gv - total));
  }
}

template <typename T, Layout L>
struct Forward {
  static void run(unsigned blocks, cudaStream_t stream, Shape3 s, const T* x, T* y, bool log, double scale,
                  int64_t causal_rows) {
    softmax_kernel<T, L><<<blocks, cuda_ops::kBlock, 0, stream>>>(x, y, s, log, scale, causal_rows);
  }
};

template <typename T, Layout L>
struct Backward {
  static void run(unsigned blocks, cudaStream_t stream, Shape3 s, const T* y, const T* g, T* dx, bool log,
                  double scale) {
    softmax_backward_kernel<T, L><<<blocks, cuda_ops::kBlock, 0, stream>>>(y, g, dx, s, log, scale);
  }
};

}  // namespace

void SoftmaxOp::forward_cuda(const TensorList& inputs, const TensorList& outputs) {
  const RowGeometry g = row_geometry(inputs[0].sizes(), dim);
  cudaStream_t stream = cuda_detail::stream(inputs[0].device().index);
  cuda_ops::dispatch<kFloatingSet>(inputs[0].dtype(), name(), [&]<typename T>() {
    launch_rows<Forward, T>(g, stream, inputs[0].data_ptr<T>(), outputs[0].data_ptr<T>(), log, scale, causal_rows);
  });
}

void SoftmaxBackwardOp::forward_cuda(const TensorList& inputs, const TensorList& outputs) {
  const RowGeometry g = row_geometry(inputs[0].sizes(), dim);
  cudaStream_t stream = cuda_detail::stream(inputs[0].device().index);
  cuda_ops::dispatch<kFloatingSet>(inputs[0].dtype(), name(), [&]<typename T>() {
    launch_rows<Backward, T>(g, stream, inputs[0].data_ptr<const T>(), inputs[1].data_ptr<const T>(),
                             outputs[0].data_ptr<T>(), log, scale);
  });
}

}  // namespace ember
