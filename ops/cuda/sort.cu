// CUDA kernel of sort: each row is a segment of CUB's stable segmented radix sort, with the
// element's index in its row as the value carried along. The keys are a copy of the input in
// which NaN is the positive quiet NaN and −0 is +0, so that the radix order is PyTorch's (NaN
// above every number; −0 equal to +0, kept in input order); the values written out are then
// read back from the input at the sorted indices, so they keep their own bits.
#include <cub/device/device_segmented_sort.cuh>

#include "ops/creation.h"
#include "ops/cuda/loops.cuh"
#include "ops/sort.h"

namespace ember {

namespace {

template <typename T>
__device__ T canonical_key(T v) {
  if constexpr (cuda_ops::is_float_v<T>) {
    const auto f = cuda_ops::convert<cuda_ops::opmath_t<T>>(v);
    if (f != f) {
      if constexpr (std::is_same_v<T, float>) return __int_as_float(0x7fc00000);
      if constexpr (std::is_same_v<T, double>) return __longlong_as_double(0x7ff8000000000000LL);
      if constexpr (std::is_same_v<T, cuda_ops::half>) return __ushort_as_half(0x7e00);
      if constexpr (std::is_same_v<T, cuda_ops::bfloat16>) return __ushort_as_bfloat16(0x7fc0);
    }
    if (f == 0) return cuda_ops::convert<T>(0.0f);
  }
  return v;
}

template <typename T>
__global__ void prepare(const T* __restrict__ x, T* __restrict__ keys, int64_t* __restrict__ index, int64_t total,
                        int64_t n) {
  const int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x;
  if (i >= total) return;
  keys[i] = canonical_key(x[i]);
  index[i] = i % n;
}

template <typename T>
__global__ void gather_sorted(const T* __restrict__ x, const int64_t* __restrict__ index, T* __restrict__ values,
                              int64_t total, int64_t n) {
  const int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x;
  if (i >= total) return;
  values[i] = x[(i / n) * n + index[i]];
}

}  // namespace

void SortOp::forward_cuda(const TensorList& inputs, const TensorList& outputs) {
  const Tensor& x = inputs[0];
  const int64_t n = x.sizes().back(), total = x.numel(), rows = n == 0 ? 0 : total / n;
  if (total == 0) return;
  const Device device = x.device();
  cudaStream_t stream = cuda_detail::stream(device.index);
  const unsigned blocks = static_cast<unsigned>((total + cuda_ops::kBlock - 1) / cuda_ops::kBlock);
  const Tensor offsets = arange(0, total + 1, n, {kInt64, device});
  const int64_t* begin = offsets.data_ptr<int64_t>();
  cuda_ops::dispatch<kNumericSet>(x.dtype(), name(), [&]<typename T>() {
    Tensor keys_in = empty(x.sizes(), {x.dtype(), device}), keys_out = empty(x.sizes(), {x.dtype(), device});
    Tensor index_in = empty(x.sizes(), {kInt64, device});
    prepare<T><<<blocks, cuda_ops::kBlock, 0, stream>>>(x.data_ptr<T>(), keys_in.data_ptr<T>(),
                                                        index_in.data_ptr<int64_t>(), total, n);
    EMBER_CUDA_CHECK_LAUNCH();
    auto run = [&](void* temp, size_t& bytes) {
      const T* k_in = keys_in.data_ptr<T>();
      T* k_out = keys_out.data_ptr<T>();
      const int64_t* i_in = index_in.data_ptr<int64_t>();
      int64_t* i_out = outputs[1].data_ptr<int64_t>();
      if (descending)
        EMBER_CUDA_CHECK(cub::DeviceSegmentedSort::StableSortPairsDescending(temp, bytes, k_in, k_out, i_in, i_out, total,
                                                                            rows, begin, begin + 1, stream));
      else
        EMBER_CUDA_CHECK(cub::DeviceSegmentedSort::StableSortPairs(temp, bytes, k_in, k_out, i_in, i_out, total, rows,
                                                                  begin, begin + 1, stream));
    };
    size_t bytes = 0;
    run(nullptr, bytes);
    Tensor temp = empty({static_cast<int64_t>(bytes)}, {kUInt8, device});
    run(temp.data(), bytes);
    gather_sorted<T><<<blocks, cuda_ops::kBlock, 0, stream>>>(x.data_ptr<T>(), outputs[1].data_ptr<int64_t>(),
                                                              outputs[0].data_ptr<T>(), total, n);
    EMBER_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace ember
