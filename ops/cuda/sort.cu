// CUDA kernel of sort: each row is a segment of CUB's stable segmented sort, with the
// element's index in its row as the value carried along. CUB sorts short segments by
// comparison and long ones by radix, and neither orders NaN as PyTorch does, so float rows
// are sorted as unsigned integer keys whose order is PyTorch's: NaN made the positive quiet
// NaN and −0 made +0 (equal to +0, kept in input order), then the sign bit flipped (all bits
// for negatives). The values written out are read back from the input at the sorted indices,
// so they keep their own bits.
#include <cub/device/device_segmented_sort.cuh>

#include "ops/creation.h"
#include "ops/cuda/loops.cuh"
#include "ops/sort.h"

namespace ember {

namespace {

// The key type a row of T sorts as: unsigned integers of the same width for floats.
template <typename T> struct SortKey { using type = T; };
template <> struct SortKey<float> { using type = uint32_t; };
template <> struct SortKey<double> { using type = uint64_t; };
template <> struct SortKey<cuda_ops::half> { using type = uint16_t; };
template <> struct SortKey<cuda_ops::bfloat16> { using type = uint16_t; };
template <typename T> using sort_key_t = typename SortKey<T>::type;

template <typename T>
__device__ sort_key_t<T> ordered_key(T v) {
  if constexpr (!cuda_ops::is_float_v<T>) {
    return v;
  } else {
    using K = sort_key_t<T>;
    const auto f = cuda_ops::convert<cuda_ops::opmath_t<T>>(v);
    K bits;
    if (f != f) {  // the positive quiet NaN of T
      if constexpr (std::is_same_v<T, double>) bits = 0x7ff8000000000000ULL;
      else if constexpr (std::is_same_v<T, float>) bits = 0x7fc00000u;
      else if constexpr (std::is_same_v<T, cuda_ops::half>) bits = 0x7e00u;
      else bits = 0x7fc0u;
    } else if (f == 0) {
      bits = 0;
    } else {
      memcpy(&bits, &v, sizeof(K));
    }
    const K sign = K(K(1) << (sizeof(K) * 8 - 1));
    return (bits & sign) ? K(~bits) : K(bits | sign);
  }
}

template <typename T>
__global__ void prepare(const T* __restrict__ x, sort_key_t<T>* __restrict__ keys, int64_t* __restrict__ index,
                        int64_t total, int64_t n) {
  const int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x;
  if (i >= total) return;
  keys[i] = ordered_key(x[i]);
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
    using K = sort_key_t<T>;
    const int64_t key_bytes = total * static_cast<int64_t>(sizeof(K));
    Tensor keys_in = empty({key_bytes}, {kUInt8, device}), keys_out = empty({key_bytes}, {kUInt8, device});
    Tensor index_in = empty(x.sizes(), {kInt64, device});
    prepare<T><<<blocks, cuda_ops::kBlock, 0, stream>>>(x.data_ptr<T>(), keys_in.data_ptr<K>(),
                                                        index_in.data_ptr<int64_t>(), total, n);
    EMBER_CUDA_CHECK_LAUNCH();
    auto run = [&](void* temp, size_t& bytes) {
      const K* k_in = keys_in.data_ptr<K>();
      K* k_out = keys_out.data_ptr<K>();
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
