// CUDA kernels of the unary ops: the functors of unary_functors.h through the shared launcher.
#include "ops/cuda/loops.cuh"
#include "ops/unary.h"

namespace ember {

namespace {

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

}  // namespace

template <typename F>
void UnaryOp<F>::forward_cuda(const TensorList& inputs, const TensorList& outputs) {
  constexpr uint32_t set = F::kKind == UnaryKind::Predicate ? kAllSet
                           : F::kKind == UnaryKind::Numeric ? kNumericSet
                                                            : kFloatingSet;
  cuda_ops::dispatch<set>(inputs[0].dtype(), name(), [&]<typename T>() {
    if constexpr (F::kKind == UnaryKind::Predicate) {
      cuda_ops::launch_elementwise<bool, T>(outputs[0], {inputs[0]}, PredicateFn<T, F>{fn});
    } else {
      cuda_ops::launch_elementwise<T, T>(outputs[0], {inputs[0]}, UnaryFn<T, F>{fn});
    }
  });
}

#define X(F) template void UnaryOp<unary::F>::forward_cuda(const TensorList&, const TensorList&);
EMBER_FOR_EACH_UNARY(X)
#undef X

}  // namespace ember
