// CPU kernel of sort: rows split across threads, each sorted by std::stable_sort of its
// indices with NaN above every number.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "ops/sort.h"
#include "runtime/dispatch.h"
#include "runtime/parallel.h"

namespace ember {

void SortOp::forward_cpu(const TensorList& inputs, const TensorList& outputs) {
  const Tensor& x = inputs[0];
  const int64_t n = x.sizes().back(), rows = n == 0 ? 0 : x.numel() / n;
  dispatch<kNumericSet>(x.dtype(), name(), [&]<typename T>() {
    const T* in = x.data_ptr<T>();
    T* values = outputs[0].data_ptr<T>();
    int64_t* indices = outputs[1].data_ptr<int64_t>();
    parallel_for(0, rows, std::max<int64_t>(1, 4096 / std::max<int64_t>(n, 1)), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const T* row = in + r * n;
        int64_t* idx = indices + r * n;
        std::iota(idx, idx + n, int64_t{0});
        // a before b: ascending with NaN last, or descending with NaN first. Floats compare as
        // double (exact for every float dtype), integers as themselves.
        auto before = [&](int64_t a, int64_t b) {
          if constexpr (is_float_v<T>) {
            const double ka = static_cast<double>(row[a]), kb = static_cast<double>(row[b]);
            if (descending) return (std::isnan(ka) && !std::isnan(kb)) || ka > kb;
            return (!std::isnan(ka) && std::isnan(kb)) || ka < kb;
          } else {
            return descending ? row[a] > row[b] : row[a] < row[b];
          }
        };
        std::stable_sort(idx, idx + n, before);
        for (int64_t i = 0; i < n; ++i) values[r * n + i] = row[idx[i]];
      }
    });
  });
}

}  // namespace ember
