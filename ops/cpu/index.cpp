// CPU kernels of the indexing ops. Each walks the output (or the index) with the shared
// pointer loop; the indexed dim has stride 0 in the walked view and is added per element.
#include <algorithm>
#include <numeric>
#include <vector>

#include "ops/cpu/loops.h"
#include "ops/index.h"
#include "runtime/dispatch.h"

namespace ember {

namespace {

// `t` seen with `sizes`, its own strides, and stride 0 along dim (the index supplies it).
Tensor dim_free_view(const Tensor& t, const Shape& sizes, int64_t dim) {
  Strides strides = t.strides();
  strides[dim] = 0;
  return make_view(t, sizes, strides, t.storage_offset());
}

// The 1-D index of index_select seen with the output's shape: it varies only along dim.
Tensor index_along(const Tensor& index, const Shape& sizes, int64_t dim) {
  Strides strides(sizes.size(), 0);
  strides[dim] = index.strides()[0];
  return make_view(index, sizes, strides, index.storage_offset());
}

template <typename T>
void gather_loop(const Tensor& out, const Tensor& src_view, const Tensor& index_view, int64_t dim_stride) {
  const int64_t step = dim_stride * static_cast<int64_t>(sizeof(T));
  cpu::for_each_pointer<3>(out.sizes(), {&out, &src_view, &index_view},
                           [step](char* const* p, const int64_t* s, int64_t n) {
                             for (int64_t k = 0; k < n; ++k) {
                               int64_t i = *reinterpret_cast<const int64_t*>(p[2] + k * s[2]);
                               *reinterpret_cast<T*>(p[0] + k * s[0]) =
                                   *reinterpret_cast<const T*>(p[1] + k * s[1] + i * step);
                             }
                           });
}

}  // namespace

void IndexSelectOp::forward_cpu(const TensorList& inputs, const TensorList& outputs) {
  const Tensor& t = inputs[0];
  const Tensor& out = outputs[0];
  Tensor src = dim_free_view(t, out.sizes(), dim);
  Tensor idx = index_along(inputs[1], out.sizes(), dim);
  dispatch<kAllSet>(t.dtype(), name(), [&]<typename T>() { gather_loop<T>(out, src, idx, t.strides()[dim]); });
}

void GatherOp::forward_cpu(const TensorList& inputs, const TensorList& outputs) {
  const Tensor& t = inputs[0];
  const Tensor& out = outputs[0];
  Tensor src = dim_free_view(t, out.sizes(), dim);
  dispatch<kAllSet>(t.dtype(), name(), [&]<typename T>() { gather_loop<T>(out, src, inputs[1], t.strides()[dim]); });
}

void ScatterOp::forward_cpu(const TensorList& inputs, const TensorList& outputs) {
  const Tensor& index = inputs[0];
  const Tensor& src = inputs[1];
  const Tensor& out = outputs[0];
  Tensor dst = dim_free_view(out, index.sizes(), dim);
  const bool acc = accumulate;
  dispatch<kAllSet>(out.dtype(), name(), [&]<typename T>() {
    const int64_t step = out.strides()[dim] * static_cast<int64_t>(sizeof(T));
    cpu::for_each_pointer<3>(
        index.sizes(), {&dst, &src, &index},
        [step, acc](char* const* p, const int64_t* s, int64_t n) {
          for (int64_t k = 0; k < n; ++k) {
            int64_t i = *reinterpret_cast<const int64_t*>(p[2] + k * s[2]);
            T* d = reinterpret_cast<T*>(p[0] + k * s[0] + i * step);
            T v = *reinterpret_cast<const T*>(p[1] + k * s[1]);
            if constexpr (std::is_same_v<T, bool>) {
              *d = acc ? (*d || v) : v;
            } else {
              *d = acc ? static_cast<T>(static_cast<opmath_t<T>>(*d) + static_cast<opmath_t<T>>(v)) : v;
            }
          }
        },
        /*parallel=*/false);
  });
}

void IndexAddRowsOp::forward_cpu(const TensorList& inputs, const TensorList& outputs) {
  const Tensor& g = inputs[0];
  const Tensor& out = outputs[0];
  const int64_t n = g.sizes()[0], width = g.sizes()[1], rows = out.sizes()[0];
  const int64_t* index = inputs[1].data_ptr<int64_t>();
  // The positions in order of their row (stable: equal rows keep the order of i), then each
  // run summed in opmath and rounded once, as the CUDA kernel does.
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [index](int64_t a, int64_t b) { return index[a] < index[b]; });
  dispatch<kFloatingSet>(g.dtype(), name(), [&]<typename T>() {
    using M = opmath_t<T>;
    const T* src = g.data_ptr<T>();
    T* dst = out.data_ptr<T>();
    std::fill(dst, dst + out.numel(), static_cast<T>(M(0)));
    std::vector<M> sum(static_cast<size_t>(width));
    for (int64_t start = 0; start < n;) {
      const int64_t row = index[order[start]];
      int64_t end = start;
      std::fill(sum.begin(), sum.end(), M(0));
      for (; end < n && index[order[end]] == row; ++end) {
        const T* r = src + order[end] * width;
        for (int64_t c = 0; c < width; ++c) sum[c] += static_cast<M>(r[c]);
      }
      if (row >= 0 && row < rows)
        for (int64_t c = 0; c < width; ++c) dst[row * width + c] = static_cast<T>(sum[c]);
      start = end;
    }
  });
}

}  // namespace ember
