// CPU kernels of the unary ops: one element-wise loop per functor and dtype.
#include "ops/cpu/vector_math.h"  // first: the loops below call the vector forms
#include "ops/cpu/loops.h"
#include "ops/unary.h"
#include "runtime/dispatch.h"

namespace ember {

template <typename F>
void UnaryOp<F>::forward_cpu(const TensorList& inputs, const TensorList& outputs) {
  constexpr uint32_t set = F::kKind == UnaryKind::Predicate ? kAllSet
                           : F::kKind == UnaryKind::Numeric ? kNumericSet
                                                            : kFloatingSet;
  const F f = fn;
  dispatch<set>(inputs[0].dtype(), name(), [&]<typename T>() {
    using M = opmath_t<T>;
    if constexpr (F::kKind == UnaryKind::Predicate) {
      cpu::elementwise<bool, T>(outputs[0], {inputs[0]}, [f](T x) { return f(static_cast<M>(x)); });
    } else {
      cpu::elementwise<T, T>(outputs[0], {inputs[0]}, [f](T x) { return static_cast<T>(f(static_cast<M>(x))); });
    }
  });
}

#define X(F) template void UnaryOp<unary::F>::forward_cpu(const TensorList&, const TensorList&);
EMBER_FOR_EACH_UNARY(X)
#undef X

}  // namespace ember
