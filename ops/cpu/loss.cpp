// CPU kernels of the fused cross-entropy: rows split across threads, each row read once
// forward (max, then the sum of exponentials and the weighted sum of logits) and once back.
#include <cmath>
#include <limits>

#include "ops/loss.h"
#include "runtime/dispatch.h"
#include "runtime/error.h"
#include "runtime/parallel.h"

namespace ember {

namespace {

struct RowArgs {
  int64_t rows, classes, ignore_index;
  double eps;
  int64_t grad_stride = 1;  // backward: elements between rows' gradients (0 when expanded)
};

// Throws for a target outside [0, C) that is not ignore_index.
bool row_is_valid(int64_t t, const RowArgs& a) {
  if (t == a.ignore_index) return false;
  EMBER_CHECK(t >= 0 && t < a.classes, InvalidArgument, "[cross_entropy] a target is outside [0, ", a.classes,
              "): got ", t);
  return true;
}

template <typename T, typename L>
void forward_rows(const T* x, const int64_t* target, const T* weight, T* loss, T* row_weight, L* lse_out,
                  const RowArgs& a) {
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(a.classes, 1));
  parallel_for(0, a.rows, grain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const T* row = x + i * a.classes;
      double m = -std::numeric_limits<double>::infinity();
      for (int64_t c = 0; c < a.classes; ++c) m = std::max(m, static_cast<double>(row[c]));
      double s = 0, weighted_x = 0, weight_sum = 0;
      for (int64_t c = 0; c < a.classes; ++c) {
        const double v = static_cast<double>(row[c]);
        s += std::exp(v - m);
        const double wc = weight ? static_cast<double>(weight[c]) : 1.0;
        weighted_x += wc * v;
        weight_sum += wc;
      }
      const double lse = m + std::log(s);
      lse_out[i] = static_cast<L>(lse);
      const int64_t t = target[i];
      if (!row_is_valid(t, a)) {
        loss[i] = T(0);
        row_weight[i] = T(0);
        continue;
      }
      const double w_y = weight ? static_cast<double>(weight[t]) : 1.0;
      const double nll = w_y * (lse - static_cast<double>(row[t]));
      const double smooth = weight_sum * lse - weighted_x;
      loss[i] = static_cast<T>((1 - a.eps) * nll + a.eps / static_cast<double>(a.classes) * smooth);
      row_weight[i] = static_cast<T>(w_y);
    }
  });
}

template <typename T, typename L>
void backward_rows(const T* x, const int64_t* target, const T* weight, const L* lse, const T* grad,
                   const L* grad_lse, T* dx, const RowArgs& a) {
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(a.classes, 1));
  parallel_for(0, a.rows, grain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const T* row = x + i * a.classes;
      T* out = dx + i * a.classes;
      const int64_t t = target[i];
      const double l = static_cast<double>(lse[i]);
      const double g_lse = static_cast<double>(grad_lse[i]);
      if (!row_is_valid(t, a)) {
        for (int64_t c = 0; c < a.classes; ++c)
          out[c] = static_cast<T>(g_lse * std::exp(static_cast<double>(row[c]) - l));
        continue;
      }
      double weight_sum = static_cast<double>(a.classes);
      if (weight) {
        weight_sum = 0;
        for (int64_t c = 0; c < a.classes; ++c) weight_sum += static_cast<double>(weight[c]);
      }
      const double g = static_cast<double>(grad[i * a.grad_stride]);
      const double w_y = weight ? static_cast<double>(weight[t]) : 1.0;
      const double nll_scale = g * (1 - a.eps) * w_y;
      const double smooth_scale = g * a.eps / static_cast<double>(a.classes);
      for (int64_t c = 0; c < a.classes; ++c) {
        const double p = std::exp(static_cast<double>(row[c]) - l);
        const double wc = weight ? static_cast<double>(weight[c]) : 1.0;
        out[c] = static_cast<T>(nll_scale * (p - (c == t ? 1.0 : 0.0)) + smooth_scale * (weight_sum * p - wc) +
                              g_lse * p);
      }
    }
  });
}

template <typename T>
const T* optional_data(const Tensor& t) {
  return t.defined() ? t.data_ptr<T>() : nullptr;
}

}  // namespace

void CrossEntropyOp::forward_cpu(const TensorList& inputs, const TensorList& outputs) {
  const Tensor& x = inputs[0];
  const RowArgs a{x.sizes()[0], x.sizes()[1], ignore_index, label_smoothing};
  dispatch<kFloatingSet>(x.dtype(), name(), [&]<typename T>() {
    using L = std::conditional_t<is_half_v<T>, float, T>;
    forward_rows<T, L>(x.data_ptr<T>(), inputs[1].data_ptr<int64_t>(), optional_data<T>(inputs[2]),
                       outputs[0].data_ptr<T>(), outputs[1].data_ptr<T>(), outputs[2].data_ptr<L>(), a);
  });
}

void CrossEntropyBackwardOp::forward_cpu(const TensorList& inputs, const TensorList& outputs) {
  const Tensor& x = inputs[0];
  const RowArgs a{x.sizes()[0], x.sizes()[1], ignore_index, label_smoothing, inputs[4].strides()[0]};
  dispatch<kFloatingSet>(x.dtype(), name(), [&]<typename T>() {
    using L = std::conditional_t<is_half_v<T>, float, T>;
    backward_rows<T, L>(x.data_ptr<T>(), inputs[1].data_ptr<int64_t>(), optional_data<T>(inputs[2]),
                        inputs[3].data_ptr<L>(), inputs[4].data_ptr<T>(), inputs[5].data_ptr<L>(), outputs[0].data_ptr<T>(), a);
  });
}

}  // namespace ember
