// CUDA kernels of the binary ops. The instantiations are spread over binary_*.cu so nvcc
// compiles them in parallel.
#pragma once

#include "ops/binary.h"
#include "ops/cuda/loops.cuh"

namespace ember {

namespace binary_cuda {

template <typename T, typename F>
struct BinaryFn {
  F f;
  __device__ T operator()(T a, T b) const {
    using M = cuda_ops::opmath_t<T>;
    return cuda_ops::convert<T>(f(cuda_ops::convert<M>(a), cuda_ops::convert<M>(b)));
  }
};

template <typename T, typename F>
struct CompareFn {
  F f;
  __device__ bool operator()(T a, T b) const {
    using M = cuda_ops::opmath_t<T>;
    return f(cuda_ops::convert<M>(a), cuda_ops::convert<M>(b));
  }
};

template <typename T>
struct WhereFn {
  __device__ T operator()(bool c, T a, T b) const { return c ? a : b; }
};

}  // namespace binary_cuda

template <typename F>
void BinaryOp<F>::forward_cuda(const TensorList& inputs, const TensorList& outputs) {
  constexpr uint32_t set = F::kKind == BinaryKind::TrueDiv   ? kFloatingSet
                           : F::kKind == BinaryKind::Bitwise ? (kIntegralSet | kBoolSet)
                           : F::kKind == BinaryKind::Arith   ? (F::kAllowBool ? kAllSet : kNumericSet)
                                                             : kAllSet;
  cuda_ops::dispatch<set>(inputs[0].dtype(), name(), [&]<typename T>() {
    if constexpr (F::kKind == BinaryKind::Compare || F::kKind == BinaryKind::Logical) {
      cuda_ops::launch_elementwise<bool, T, T>(outputs[0], {inputs[0], inputs[1]}, binary_cuda::CompareFn<T, F>{fn});
    } else {
      cuda_ops::launch_elementwise<T, T, T>(outputs[0], {inputs[0], inputs[1]}, binary_cuda::BinaryFn<T, F>{fn});
    }
  });
}

}  // namespace ember

#define EMBER_BINARY_CUDA_INSTANTIATE(F) \
  template void ember::BinaryOp<ember::binary::F>::forward_cuda(const ember::TensorList&, const ember::TensorList&);
