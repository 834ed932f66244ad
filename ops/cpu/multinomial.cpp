// CPU kernel of multinomial's inverse-CDF step: a binary search per draw.
#include <algorithm>

#include "ops/random.h"
#include "runtime/dispatch.h"
#include "runtime/parallel.h"

namespace ember {

void SearchCdfOp::forward_cpu(const TensorList& inputs, const TensorList& outputs) {
  const int64_t rows = inputs[0].size(0), n = inputs[0].size(1), k = inputs[1].size(1);
  dispatch<dtype_bit(kFloat32) | dtype_bit(kFloat64)>(inputs[0].dtype(), name(), [&]<typename T>() {
    const T* cdf = inputs[0].data_ptr<T>();
    const T* u = inputs[1].data_ptr<T>();
    int64_t* out = outputs[0].data_ptr<int64_t>();
    parallel_for(0, rows * k, 1024, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const T* row = cdf + (i / k) * n;
        const T target = u[i] * row[n - 1];
        int64_t at = std::upper_bound(row, row + n, target) - row;
        // u·total rounded up to total: the last category of positive weight.
        while (at >= n || (at > 0 && row[at] == row[at - 1])) --at;
        out[i] = at;
      }
    });
  });
}

}  // namespace ember
