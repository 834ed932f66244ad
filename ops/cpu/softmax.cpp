// CPU kernels of softmax and log-softmax: rows (outer × inner of them, strided by `inner`)
// split across threads; each row read for its maximum, again for the sum of exponentials, and
// written once. Accumulation in double, as every CPU reduction. Contiguous float32 rows (the
// last dim, as attention's) take their exponentials in float through libmvec's vector expf
// (ops/cpu/vector_math.h), written into the output and then scaled: the scalar double exp of
// every element was 12% of vit_b_16's CPU forward.
#include "ops/cpu/vector_math.h"  // first: the row loops below call the vector expf

#include <algorithm>
#include <cmath>
#include <limits>

#include "ops/softmax.h"
#include "runtime/dispatch.h"
#include "runtime/parallel.h"

namespace ember {

namespace {

template <typename F>
void for_each_row(const RowGeometry& g, F&& f) {
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(g.size, 1));
  parallel_for(0, g.outer * g.inner, grain, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) f((r / g.inner) * g.size * g.inner + r % g.inner);
  });
}

/// One contiguous float32 row: y[0, size) from x[0, read) scaled by `scale` (the rest masked).
/// The same results as the general loop to within a few float ulps: the maximum and the
/// differences in float, the exponentials by the vector expf (within 2.8 ulps), their sum in
/// double.
void softmax_row_float(const float* x, float* y, int64_t read, int64_t size, float scale, bool log) {
  float m = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < read; ++i) m = std::max(m, x[i] * scale);
  if (m == -std::numeric_limits<float>::infinity()) m = 0;  // every element -inf: NaN or -inf below, as PyTorch
  for (int64_t i = 0; i < read; ++i) y[i] = std::exp(x[i] * scale - m);
  // Four partial sums: one chain of dependent double additions would cost more than the expf.
  double part[4] = {0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 4 <= read; i += 4)
    for (int k = 0; k < 4; ++k) part[k] += static_cast<double>(y[i + k]);
  for (; i < read; ++i) part[0] += static_cast<double>(y[i]);
  const double s = (part[0] + part[1]) + (part[2] + part[3]);
  const float masked = log ? -std::numeric_limits<float>::infinity() : 0.f;
  if (log) {
    const double lse = static_cast<double>(m) + std::log(s);
    for (int64_t k = 0; k < read; ++k) y[k] = static_cast<float>(static_cast<double>(x[k] * scale) - lse);
  } else {
    const double inv = 1.0 / s;
    for (int64_t k = 0; k < read; ++k) y[k] = static_cast<float>(static_cast<double>(y[k]) * inv);
  }
  std::fill(y + read, y + size, masked);
}

}  // namespace

void SoftmaxOp::forward_cpu(const TensorList& inputs, const TensorList& outputs) {
  const RowGeometry g = row_geometry(inputs[0].sizes(), dim);
  dispatch<kFloatingSet>(inputs[0].dtype(), name(), [&]<typename T>() {
    const T* x = inputs[0].data_ptr<T>();
    T* y = outputs[0].data_ptr<T>();
    // The scale is applied in opmath (float for float32 and the half types), as a
    // multiplication by a number before the softmax would and as the CUDA kernel does; with a
    // causal mask (last dim only, inner = 1) row i of L reads columns 0..i.
    using M = opmath_t<T>;
    const M sc = static_cast<M>(scale);
    const int64_t causal = causal_rows;
    if constexpr (std::is_same_v<T, float>) {
      if (g.inner == 1) {
        for_each_row(g, [&](int64_t start) {
          const int64_t read = causal > 0 ? std::min(g.size, (start / g.size) % causal + 1) : g.size;
          softmax_row_float(x + start, y + start, read, g.size, sc, log);
        });
        return;
      }
    }
    for_each_row(g, [&](int64_t start) {
      const int64_t read = causal > 0 ? std::min(g.size, (start / g.size) % causal + 1) : g.size;
      auto value = [&](int64_t i) { return static_cast<double>(static_cast<M>(x[start + i * g.inner]) * sc); };
      double m = -std::numeric_limits<double>::infinity();
      for (int64_t i = 0; i < read; ++i) m = std::max(m, value(i));
      if (m == -std::numeric_limits<double>::infinity()) m = 0;  // every element -inf: NaN or -inf below, as PyTorch
      double s = 0;
      for (int64_t i = 0; i < read; ++i) s += std::exp(value(i) - m);
      const double lse = m + std::log(s);
      for (int64_t i = 0; i < g.size; ++i) {
        const double v = i < read ? value(i) : -std::numeric_limits<double>::infinity();
        y[start + i * g.inner] = static_cast<T>(log ? v - lse : std::exp(v - lse));
      }
    });
  });
}

void SoftmaxBackwardOp::forward_cpu(const TensorList& inputs, const TensorList& outputs) {
  const RowGeometry g = row_geometry(inputs[0].sizes(), dim);
  dispatch<kFloatingSet>(inputs[0].dtype(), name(), [&]<typename T>() {
    const T* y = inputs[0].data_ptr<T>();
    const T* dy = inputs[1].data_ptr<T>();
    T* dx = outputs[0].data_ptr<T>();
    for_each_row(g, [&](int64_t start) {
      double s = 0;
      for (int64_t i = 0; i < g.size; ++i) {
        const int64_t at = start + i * g.inner;
        s += log ? static_cast<double>(dy[at]) : static_cast<double>(dy[at]) * static_cast<double>(y[at]);
      }
      for (int64_t i = 0; i < g.size; ++i) {
        const int64_t at = start + i * g.inner;
        const double yv = static_cast<double>(y[at]), gv = static_cast<double>(dy[at]);
        dx[at] = static_cast<T>(log ? gv - std::exp(yv) * s : scale * yv * (gv - s));
      }
    });
  });
}

}  // namespace ember
