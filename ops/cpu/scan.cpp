// CPU kernel of cumsum: rows (outer × inner of them, elements `inner` apart) split across
// threads, each summed in order in the accumulation type (double for floats).
#include <algorithm>

#include "ops/scan.h"
#include "ops/softmax.h"  // row_geometry
#include "runtime/dispatch.h"
#include "runtime/parallel.h"

namespace ember {

void CumsumOp::forward_cpu(const TensorList& inputs, const TensorList& outputs) {
  const RowGeometry g = row_geometry(inputs[0].sizes(), dim);
  dispatch<kNumericSet>(inputs[0].dtype(), name(), [&]<typename T>() {
    using A = acc_t<T>;
    const T* x = inputs[0].data_ptr<T>();
    T* y = outputs[0].data_ptr<T>();
    const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(g.size, 1));
    parallel_for(0, g.outer * g.inner, grain, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const int64_t start = (r / g.inner) * g.size * g.inner + r % g.inner;
        A acc = 0;
        for (int64_t i = 0; i < g.size; ++i) {
          acc += convert<A>(x[start + i * g.inner]);
          y[start + i * g.inner] = convert<T>(acc);
        }
      }
    });
  });
}

}  // namespace ember
