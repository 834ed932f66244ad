// CPU kernels of the reductions: a reducer from reduce_functors.h per kind, run by cpu::reduce.
#include <cmath>

#include "ops/cpu/reduce_loop.h"
#include "ops/reduce.h"
#include "ops/reduce_functors.h"
#include "runtime/dispatch.h"

namespace ember {

namespace {

// Feeds elements of type T to a reducer that works in the accumulator type acc_t<T>.
template <typename T, typename R>
struct Adapt {
  R r;
  using Acc = typename R::Acc;
  using A = acc_t<T>;
  Acc identity() const { return r.identity(); }
  Acc step(Acc a, T x, int64_t i) const { return r.step(a, static_cast<A>(static_cast<opmath_t<T>>(x)), i); }
  Acc combine(Acc a, Acc b) const { return r.combine(a, b); }
};

// Reduces x into the contiguous output y, writing finish(acc) converted to Out.
template <typename T, typename Out, typename R, typename Finish>
void run(const Tensor& x, const DimList& dims, const Tensor& y, const R& r, const Finish& finish) {
  Out* out = y.data_ptr<Out>();
  cpu::reduce<T>(x, dims, Adapt<T, R>{r},
                 [&](int64_t o, const typename R::Acc& acc) { out[o] = convert<Out>(finish(acc)); });
}

int64_t reduced_numel(const Tensor& x, const DimList& dims) {
  int64_t n = 1;
  for (int64_t d : dims) n *= x.sizes()[d];
  return n;
}

}  // namespace

void ReduceOp::forward_cpu(const TensorList& inputs, const TensorList& outputs) {
  const Tensor& x = inputs[0];
  const Tensor& y = outputs[0];
  auto identity = [](auto a) { return a; };
  switch (kind) {
    case ReduceKind::Sum:
      dispatch<kNumericSet>(x.dtype(), name(), [&]<typename T>() {
        run<T, T>(x, dims, y, reduce::Sum<acc_t<T>>{}, identity);
      });
      break;
    case ReduceKind::Prod:
      dispatch<kNumericSet>(x.dtype(), name(), [&]<typename T>() {
        run<T, T>(x, dims, y, reduce::Prod<acc_t<T>>{}, identity);
      });
      break;
    case ReduceKind::Mean: {
      const double n = static_cast<double>(reduced_numel(x, dims));
      dispatch<kFloatingSet>(x.dtype(), name(), [&]<typename T>() {
        run<T, T>(x, dims, y, reduce::Sum<double>{}, [n](double a) { return a / n; });
      });
      break;
    }
    case ReduceKind::Amax:
      dispatch<kAllSet>(x.dtype(), name(), [&]<typename T>() {
        run<T, T>(x, dims, y, reduce::Extreme<acc_t<T>, true>{}, identity);
      });
      break;
    case ReduceKind::Amin:
      dispatch<kAllSet>(x.dtype(), name(), [&]<typename T>() {
        run<T, T>(x, dims, y, reduce::Extreme<acc_t<T>, false>{}, identity);
      });
      break;
    case ReduceKind::Any:
    case ReduceKind::All:
      dispatch<kAllSet>(x.dtype(), name(), [&]<typename T>() {
        auto go = [&]<typename R>(R r) {
          if (y.dtype() == kBool) run<T, bool>(x, dims, y, r, identity);
          else run<T, uint8_t>(x, dims, y, r, identity);
        };
        if (kind == ReduceKind::Any) go(reduce::Truth<false>{});
        else go(reduce::Truth<true>{});
      });
      break;
    case ReduceKind::Var:
    case ReduceKind::Std:
      dispatch<kFloatingSet>(x.dtype(), name(), [&]<typename T>() {
        reduce::Welford<double> w{.correction = correction};
        bool take_sqrt = kind == ReduceKind::Std;
        run<T, T>(x, dims, y, w, [w, take_sqrt](const reduce::Welford<double>::Acc& a) {
          double v = w.variance(a);
          return take_sqrt ? std::sqrt(v) : v;
        });
      });
      break;
    case ReduceKind::Norm:
      dispatch<kFloatingSet>(x.dtype(), name(), [&]<typename T>() {
        reduce::Norm<double> nr{.p = p};
        run<T, T>(x, dims, y, nr, [nr](double a) { return nr.finish(a); });
      });
      break;
  }
}

void ArgReduceOp::forward_cpu(const TensorList& inputs, const TensorList& outputs) {
  const Tensor& x = inputs[0];
  dispatch<kNumericSet | kBoolSet>(x.dtype(), name(), [&]<typename T>() {
    auto go = [&]<bool kMax>() {
      using R = reduce::ArgExtreme<acc_t<T>, kMax>;
      int64_t* idx = outputs[with_values ? 1 : 0].data_ptr<int64_t>();
      T* vals = with_values ? outputs[0].data_ptr<T>() : nullptr;
      cpu::reduce<T>(x, dims, Adapt<T, R>{R{}}, [&](int64_t o, const typename R::Acc& a) {
        idx[o] = a.index < 0 ? 0 : a.index;
        if (vals) vals[o] = convert<T>(a.value);
      });
    };
    if (is_max) go.template operator()<true>();
    else go.template operator()<false>();
  });
}

}  // namespace ember
