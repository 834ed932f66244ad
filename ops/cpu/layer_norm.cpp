// CPU kernels of layer norm and RMS norm: rows split across threads; a row's mean, then its
// variance about the mean (two passes, in double), then its output.
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

}  // namespace

void LayerNormOp::forward_cpu(const TensorList& inputs, const TensorList& outputs) {
  const int64_t rows = inputs[0].sizes()[0], m = inputs[0].sizes()[1];
  dispatch<kFloatingSet>(inputs[0].dtype(), name(), [&]<typename T>() {
    using S = std::conditional_t<std::is_same_v<T, double>, double, float>;
    const T* x = inputs[0].data_ptr<T>();
    const T* w = optional_data<T>(inputs[1]);
    const T* b = optional_data<T>(inputs[2]);
    T* y = outputs[0].data_ptr<T>();
    S* mean_out = outputs[1].data_ptr<S>();
    S* rstd_out = outputs[2].data_ptr<S>();
    parallel_for(0, rows, grain_for(m), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const T* xr = x + r * m;
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
        mean_out[r] = static_cast<S>(mean);
        rstd_out[r] = static_cast<S>(rstd);
        for (int64_t i = 0; i < m; ++i) {
          double v = (static_cast<double>(xr[i]) - mean) * rstd;
          if (w) v *= static_cast<double>(w[i]);
          if (b) v += static_cast<double>(b[i]);
          y[r * m + i] = static_cast<T>(v);
        }
      }
    });
  });
}

void LayerNormBackwardOp::forward_cpu(const TensorList& inputs, const TensorList& outputs) {
  const int64_t rows = inputs[0].sizes()[0], m = inputs[0].sizes()[1];
  dispatch<kFloatingSet>(inputs[0].dtype(), name(), [&]<typename T>() {
    using S = std::conditional_t<std::is_same_v<T, double>, double, float>;
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
