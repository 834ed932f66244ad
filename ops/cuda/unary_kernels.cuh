// CUDA kernels of the unary ops: the functors of unary_functors.h through the shared launcher.
// The instantiations are spread over unary_*.cu so nvcc compiles them in parallel.
#pragma once

#include "ops/cuda/loops.cuh"
#include "ops/unary.h"

namespace ember {

namespace unary_cuda {

template <typename T, typename F>
struct UnaryFn {
  F f;
  __device__ T operator()(T x) const { return cuda_ops::convert<T>(f(cuda_ops::convert<cuda_ops::opmath_t<T>>(x))); }
};

template <typename T, typename F>
struct PredicateFn {
  F f;
  __device__ bool operator()(T x) const { return f(cuda_ops::convert<cuda_ops::opmath_t<T>>(x)); }
};

}  // namespace unary_cuda

template <typename F>
void UnaryOp<F>::forward_cuda(const TensorList& inputs, const TensorList& outputs) {
  constexpr uint32_t set = F::kKind == UnaryKind::Predicate ? kAllSet
                           : F::kKind == UnaryKind::Numeric ? kNumericSet
                                                            : kFloatingSet;
  cuda_ops::dispatch<set>(inputs[0].dtype(), name(), [&]<typename T>() {
    if constexpr (F::kKind == UnaryKind::Predicate) {
      cuda_ops::launch_elementwise<bool, T>(outputs[0], {inputs[0]}, unary_cuda::PredicateFn<T, F>{fn});
    } else {
      cuda_ops::launch_elementwise<T, T>(outputs[0], {inputs[0]}, unary_cuda::UnaryFn<T, F>{fn});
    }
  });
}

}  // namespace ember

#define EMBER_UNARY_CUDA_INSTANTIATE(F) \
  template void ember::UnaryOp<ember::unary::F>::forward_cuda(const ember::TensorList&, const ember::TensorList&);
