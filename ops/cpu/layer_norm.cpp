// CPU kernels of layer norm and RMS norm (and of a residual add fused with layer norm): rows
// split across threads; a row's mean, then its variance about the mean (two passes, in double),
// then its output.
#include <algorithm>
#include <cmath>

#include "ops/layer_norm.h"
#include "runtime/dispatch.h"
#include "runtime/parallel.h"

namespace ember {

namespace {

template <typename T>
const T* optional_data(const Tensor& t) {
  return t.defined() ? t.data_ptr<T>() : nullptr;
}

int64_t grain_for(int64_t m) { return std::max<int64_t>(1, 32768 / std::max<int64_t>(m, 1)); }

// Normalises each row of x, or of x + res where res is given (the sum, rounded to T as a
// separate add rounds it, is written to `sum` and normalised from there). mean_out and
// rstd_out are optional.
template <typename T, typename S>
void normalise_rows(const T* x, const T* res, const T* w, const T* b, T* y, T* sum, S* mean_out, S* rstd_out,
                    int64_t rows, int64_t m, bool rms, double eps) {
  parallel_for(0, rows, grain_for(m), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const T* xr = x + r * m;
      if (res) {
        for (int64_t i = 0; i < m; ++i) sum[r * m + i] = static_cast<T>(static_cast<S>(xr[i]) + static_cast<S>(res[r * m + i]));
        xr = sum + r * m;
      }
      double mean = 0, var = 0;
      if (!rms) {
        for (int64_t i = 0; i < m; ++i) mean += static_cast<double>(xr[i]);
        mean /= static_cast<double>(m);
      }
      for (int64_t i = 0; i < m; ++i) {
        const double d = static_cast<double>(xr[i]) - mean;
        var += d * d;
      }
      const double rstd = 1 / std::sqrt(var / static_cast<double>(m) + eps);
      if (mean_out) mean_out[r] = static_cast<S>(mean);
      if (rstd_out) rstd_out[r] = static_cast<S>(rstd);
      for (int64_t i = 0; i < m; ++i) {
        double v = (static_cast<double>(xr[i]) - mean) * rstd;
        if (w) v *= static_cast<double>(w[i]);
        if (b) v += static_cast<double>(b[i]);
        y[r * m + i] = static_cast<T>(v);
      }
    }
  });
}

template <typename T>
using stats_t = std::conditional_t<std::is_same_v<T, double>, double, float>;

}  // namespace

void LayerNormOp::forward_cpu(const TensorList& inputs, const TensorList& outputs) {
  const int64_t rows = inputs[0].sizes()[0], m = inputs[0].sizes()[1];
  dispatch<kFloatingSet>(inputs[0].dtype(), name(), [&]<typename T>() {
    normalise_rows<T, stats_t<T>>(inputs[0].data_ptr<T>(), nullptr, optional_data<T>(inputs[1]),
                                  optional_data<T>(inputs[2]), outputs[0].data_ptr<T>(), nullptr,
                                  outputs[1].data_ptr<stats_t<T>>(), outputs[2].data_ptr<stats_t<T>>(), rows, m, rms,
                                  eps);
  });
}

void AddLayerNormOp::forward_cpu(const TensorList& inputs, const TensorList& outputs) {
  const int64_t rows = inputs[0].sizes()[0], m = inputs[0].sizes()[1];
  dispatch<kFloatingSet>(inputs[0].dtype(), name(), [&]<typename T>() {
    normalise_rows<T, stats_t<T>>(inputs[0].data_ptr<T>(), inputs[1].data_ptr<T>(), optional_data<T>(inputs[2]),
                                  optional_data<T>(inputs[3]), outputs[0].data_ptr<T>(), outputs[1].data_ptr<T>(),
                                  static_cast<stats_t<T>*>(nullptr), static_cast<stats_t<T>*>(nullptr), rows, m, false,
                                  eps);
  });
}

void LayerNormBackwardOp::forward_cpu(const TensorList& inputs, const TensorList& outputs) {
  const int64_t rows = inputs[0].sizes()[0], m = inputs[0].sizes()[1];
  dispatch<kFloatingSet>(inputs[0].dtype(), name(), [&]<typename T>() {
    using S = stats_t<T>;
    const T* x = inputs[0].data_ptr<T>();
    const T* g = inputs[1].data_ptr<T>();
    const T* w = optional_data<T>(inputs[2]);
    const S* mean = inputs[3].data_ptr<S>();
    const S* rstd = inputs[4].data_ptr<S>();
    T* dx = outputs[0].data_ptr<T>();
    parallel_for(0, rows, grain_for(m), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const double mu = static_cast<double>(mean[r]), rs = static_cast<double>(rstd[r]);
        double sum_gw = 0, sum_gw_xhat = 0;
        for (int64_t i = 0; i < m; ++i) {
          const double gw = static_cast<double>(g[r * m + i]) * (w ? static_cast<double>(w[i]) : 1.0);
          sum_gw += gw;
          sum_gw_xhat += gw * (static_cast<double>(x[r * m + i]) - mu) * rs;
        }
        const double mean_gw = rms ? 0 : sum_gw / static_cast<double>(m), mean_gw_xhat = sum_gw_xhat / static_cast<double>(m);
        for (int64_t i = 0; i < m; ++i) {
          const double gw = static_cast<double>(g[r * m + i]) * (w ? static_cast<double>(w[i]) : 1.0);
          const double xhat = (static_cast<double>(x[r * m + i]) - mu) * rs;
          dx[r * m + i] = static_cast<T>(rs * (gw - mean_gw - xhat * mean_gw_xhat));
        }
      }
    });
  });
}

}  // namespace ember
