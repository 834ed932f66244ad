// CUDA kernels of the indexing ops. Gathers walk the output with the shared pointer launcher;
// scatters give one thread to each position outside the indexed dim and walk that dim in
// order, so duplicate indices resolve exactly as on the CPU (last write wins; sums in order)
// with no atomics.
#include "ops/cuda/loops.cuh"
#include "ops/index.h"
#include "ops/view.h"

namespace ember {

namespace {

Tensor dim_free_view(const Tensor& t, const Shape& sizes, int64_t dim) {
  Strides strides = t.strides();
  strides[dim] = 0;
  return make_view(t, sizes, strides, t.storage_offset());
}

Tensor index_along(const Tensor& index, const Shape& sizes, int64_t dim) {
  Strides strides(sizes.size(), 0);
  strides[dim] = index.strides()[0];
  return make_view(index, sizes, strides, index.storage_offset());
}

template <typename T>
struct GatherFn {
  int64_t step;  // bytes per index along the gathered dim
  __device__ void operator()(char** p) const {
    int64_t i = *reinterpret_cast<const int64_t*>(p[2]);
    *reinterpret_cast<T*>(p[0]) = *reinterpret_cast<const T*>(p[1] + i * step);
  }
};

template <typename T>
struct ScatterFn {
  int64_t n;              // length of the indexed dim of the index
  int64_t index_step;     // bytes between index elements along dim
  int64_t src_step;       // bytes between src elements along dim (0: broadcast value)
  int64_t dst_step;       // bytes per index value in the output
  bool accumulate;
  __device__ void operator()(char** p) const {
    for (int64_t k = 0; k < n; ++k) {
      int64_t i = *reinterpret_cast<const int64_t*>(p[2] + k * index_step);
      T* d = reinterpret_cast<T*>(p[0] + i * dst_step);
      T v = *reinterpret_cast<const T*>(p[1] + k * src_step);
      if (!accumulate) {
        *d = v;
      } else if constexpr (std::is_same_v<T, bool>) {
        *d = *d || v;
      } else {
        using M = cuda_ops::opmath_t<T>;
        *d = cuda_ops::convert<T>(cuda_ops::convert<M>(*d) + cuda_ops::convert<M>(v));
      }
    }
  }
};

}  // namespace

void IndexSelectOp::forward_cuda(const TensorList& inputs, const TensorList& outputs) {
  const Tensor& t = inputs[0];
  const Tensor& out = outputs[0];
  Tensor src = dim_free_view(t, out.sizes(), dim);
  Tensor idx = index_along(inputs[1], out.sizes(), dim);
  cuda_ops::dispatch<kAllSet>(t.dtype(), name(), [&]<typename T>() {
    cuda_ops::launch_pointer<3>(out.sizes(), {&out, &src, &idx}, out.device().index,
                                GatherFn<T>{t.strides()[dim] * static_cast<int64_t>(sizeof(T))});
  });
}

void GatherOp::forward_cuda(const TensorList& inputs, const TensorList& outputs) {
  const Tensor& t = inputs[0];
  const Tensor& out = outputs[0];
  Tensor src = dim_free_view(t, out.sizes(), dim);
  cuda_ops::dispatch<kAllSet>(t.dtype(), name(), [&]<typename T>() {
    cuda_ops::launch_pointer<3>(out.sizes(), {&out, &src, &inputs[1]}, out.device().index,
                                GatherFn<T>{t.strides()[dim] * static_cast<int64_t>(sizeof(T))});
  });
}

void ScatterOp::forward_cuda(const TensorList& inputs, const TensorList& outputs) {
  const Tensor& index = inputs[0];
  const Tensor& src = inputs[1];
  const Tensor& out = outputs[0];
  const int64_t n = index.sizes()[dim];
  if (n == 0) return;
  // Walk every position outside `dim` (dim narrowed to its first element).
  Shape walk = index.sizes();
  walk[dim] = 1;
  Tensor idx0 = narrow(index, dim, 0, 1);
  Tensor dst0 = dim_free_view(out, walk, dim);
  Tensor src0 = src.dim() == 0 ? src : narrow(src, dim, 0, 1);
  cuda_ops::dispatch<kAllSet>(out.dtype(), name(), [&]<typename T>() {
    const int64_t item = sizeof(T);
    ScatterFn<T> f{n, index.strides()[dim] * 8, src.dim() == 0 ? 0 : src.strides()[dim] * item,
                   out.strides()[dim] * item, accumulate};
    cuda_ops::launch_pointer<3>(walk, {&dst0, &src0, &idx0}, out.device().index, f);
  });
}

}  // namespace ember
