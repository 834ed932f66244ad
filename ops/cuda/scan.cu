// CUDA kernel of cumsum. Rows along the last dim take a warp each: 32 elements at a time are
// scanned with shuffles and the running total carried to the next 32. Rows whose elements
// are `inner` apart take a thread each (neighbouring threads read neighbouring columns).
#include "ops/cuda/loops.cuh"
#include "ops/scan.h"
#include "ops/softmax.h"  // row_geometry

namespace ember {

namespace {

constexpr int kWarps = cuda_ops::kBlock / 32;

template <typename T>
__global__ void __launch_bounds__(cuda_ops::kBlock) warp_rows(const T* __restrict__ x, T* __restrict__ y, int64_t rows, int64_t n) {
  using A = cuda_ops::acc_t<T>;
  const int64_t row = int64_t{blockIdx.x} * kWarps + (threadIdx.x >> 5);
  if (row >= rows) return;
  const int lane = threadIdx.x & 31;
  const T* xr = x + row * n;
  T* yr = y + row * n;
  A carry = 0;
  for (int64_t base = 0; base < n; base += 32) {
    const int64_t i = base + lane;
    A v = i < n ? cuda_ops::convert<A>(xr[i]) : A(0);
    for (int o = 1; o < 32; o <<= 1) {
      const A up = __shfl_up_sync(0xffffffffu, v, o);
      if (lane >= o) v += up;
    }
    if (i < n) yr[i] = cuda_ops::convert<T>(carry + v);
    carry += __shfl_sync(0xffffffffu, v, 31);
  }
}

template <typename T>
__global__ void __launch_bounds__(cuda_ops::kBlock)
    column_rows(const T* __restrict__ x, T* __restrict__ y, int64_t outer, int64_t n, int64_t inner) {
  using A = cuda_ops::acc_t<T>;
  const int64_t col = int64_t{blockIdx.x} * blockDim.x + threadIdx.x;
  if (col >= outer * inner) return;
  const int64_t start = (col / inner) * n * inner + col % inner;
  A acc = 0;
  for (int64_t i = 0; i < n; ++i) {
    acc += cuda_ops::convert<A>(x[start + i * inner]);
    y[start + i * inner] = cuda_ops::convert<T>(acc);
  }
}

}  // namespace

void CumsumOp::forward_cuda(const TensorList& inputs, const TensorList& outputs) {
  const RowGeometry g = row_geometry(inputs[0].sizes(), dim);
  if (g.outer * g.inner * g.size == 0) return;
  cudaStream_t stream = cuda_detail::stream(inputs[0].device().index);
  cuda_ops::dispatch<kNumericSet>(inputs[0].dtype(), name(), [&]<typename T>() {
    const T* x = inputs[0].data_ptr<T>();
    T* y = outputs[0].data_ptr<T>();
    if (g.inner == 1) {
      const unsigned blocks = static_cast<unsigned>((g.outer + kWarps - 1) / kWarps);
      warp_rows<T><<<blocks, cuda_ops::kBlock, 0, stream>>>(x, y, g.outer, g.size);
    } else {
      const unsigned blocks = static_cast<unsigned>((g.outer * g.inner + cuda_ops::kBlock - 1) / cuda_ops::kBlock);
      column_rows<T><<<blocks, cuda_ops::kBlock, 0, stream>>>(x, y, g.outer, g.size, g.inner);
    }
    EMBER_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace ember
