// CPU kernels of the factories and of fill / copy (casts between any two dtypes).
#include <algorithm>

#include "ops/copy.h"
#include "ops/cpu/loops.h"
#include "ops/creation.h"
#include "runtime/dispatch.h"

namespace ember {

namespace {

template <typename T>
T scalar_as(const Scalar& s) {
  switch (s.kind()) {
    case Scalar::Kind::Bool: return convert<T>(s.to<bool>());
    case Scalar::Kind::Int: return convert<T>(s.to<int64_t>());
    case Scalar::Kind::Float: return convert<T>(s.to<double>());
  }
  return T();
}

}  // namespace

void FillOp::forward_cpu(const TensorList&, const TensorList& outputs) {
  dispatch<kAllSet>(outputs[0].dtype(), name(), [&]<typename T>() {
    const T v = scalar_as<T>(value);
    cpu::elementwise<T>(outputs[0], {}, [v]() { return v; });
  });
}

void CopyOp::forward_cpu(const TensorList& inputs, const TensorList& outputs) {
  dispatch<kAllSet>(outputs[0].dtype(), name(), [&]<typename Out>() {
    dispatch<kAllSet>(inputs[0].dtype(), name(), [&]<typename In>() {
      cpu::elementwise<Out, In>(outputs[0], {inputs[0]}, [](In x) { return convert<Out>(x); });
    });
  });
}

void ArangeOp::forward_cpu(const TensorList&, const TensorList& outputs) {
  const Tensor& out = outputs[0];
  dispatch<kNumericSet>(out.dtype(), name(), [&]<typename T>() {
    T* o = out.data_ptr<T>();
    const int64_t n = out.numel();
    if constexpr (is_float_v<T>) {
      const double s = start.to_double(), st = step.to_double();
      for (int64_t i = 0; i < n; ++i) o[i] = convert<T>(s + static_cast<double>(i) * st);
    } else {
      const int64_t s = start.to<int64_t>(), st = step.to<int64_t>();
      for (int64_t i = 0; i < n; ++i) o[i] = convert<T>(s + i * st);
    }
  });
}

void LinspaceOp::forward_cpu(const TensorList&, const TensorList& outputs) {
  const Tensor& out = outputs[0];
  dispatch<kNumericSet>(out.dtype(), name(), [&]<typename T>() {
    T* o = out.data_ptr<T>();
    const int64_t n = out.numel();
    if (n == 1) o[0] = convert<T>(start);
    if (n <= 1) return;
    // Symmetric like PyTorch: the first half from start, the second half back from end.
    const double step = (end - start) / static_cast<double>(n - 1);
    const int64_t half = n / 2;
    for (int64_t i = 0; i < n; ++i)
      o[i] = convert<T>(i < half ? start + step * static_cast<double>(i)
                                 : end - step * static_cast<double>(n - i - 1));
  });
}

void EyeOp::forward_cpu(const TensorList&, const TensorList& outputs) {
  const Tensor& out = outputs[0];
  const int64_t n = out.sizes()[0], m = out.sizes()[1];
  dispatch<kAllSet>(out.dtype(), name(), [&]<typename T>() {
    T* o = out.data_ptr<T>();
    std::fill(o, o + n * m, convert<T>(0));
    for (int64_t i = 0; i < std::min(n, m); ++i) o[i * m + i] = convert<T>(1);
  });
}

}  // namespace ember
