// CPU kernels of the binary ops and where.
#include "ops/cpu/vector_math.h"  // first: the loops below call the vector forms
#include "ops/binary.h"
#include "ops/cpu/loops.h"
#include "runtime/dispatch.h"

namespace ember {

template <typename F>
void BinaryOp<F>::forward_cpu(const TensorList& inputs, const TensorList& outputs) {
  constexpr uint32_t set = F::kKind == BinaryKind::TrueDiv   ? kFloatingSet
                           : F::kKind == BinaryKind::Bitwise ? (kIntegralSet | kBoolSet)
                           : F::kKind == BinaryKind::Arith   ? (F::kAllowBool ? kAllSet : kNumericSet)
                                                             : kAllSet;
  const F f = fn;
  dispatch<set>(inputs[0].dtype(), name(), [&]<typename T>() {
    using M = opmath_t<T>;
    if constexpr (F::kKind == BinaryKind::Compare || F::kKind == BinaryKind::Logical) {
      cpu::elementwise<bool, T, T>(outputs[0], {inputs[0], inputs[1]},
                                   [f](T a, T b) { return f(static_cast<M>(a), static_cast<M>(b)); });
    } else {
      cpu::elementwise<T, T, T>(outputs[0], {inputs[0], inputs[1]}, [f](T a, T b) {
        return static_cast<T>(f(static_cast<M>(a), static_cast<M>(b)));
      });
    }
  });
}

#define X(F) template void BinaryOp<binary::F>::forward_cpu(const TensorList&, const TensorList&);
EMBER_FOR_EACH_BINARY(X)
#undef X

void WhereOp::forward_cpu(const TensorList& inputs, const TensorList& outputs) {
  dispatch<kAllSet>(inputs[1].dtype(), name(), [&]<typename T>() {
    cpu::elementwise<T, bool, T, T>(outputs[0], {inputs[0], inputs[1], inputs[2]},
                                    [](bool c, T a, T b) { return c ? a : b; });
  });
}

}  // namespace ember
