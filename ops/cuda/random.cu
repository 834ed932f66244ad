// CUDA kernels of the random ops: thread k draws Philox block offset + k and writes the
// elements the CPU kernel writes from that block, so both devices give the same numbers.
// randperm sorts indices by random keys with CUB's stable radix sort, as the CPU sorts them.
#include <cub/device/device_radix_sort.cuh>

#include "ops/cuda/loops.cuh"
#include "ops/random.h"
#include "ops/random_functors.h"

namespace ember {

namespace {

using cuda_ops::convert;

template <typename T, typename Fill>
__global__ void block_kernel(T* out, int64_t n, uint64_t seed, uint64_t offset, int per_block, Fill fill) {
  const int64_t blocks = (n + per_block - 1) / per_block;
  for (int64_t k = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; k < blocks;
       k += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    philox::Block b = philox::generate(seed, offset + static_cast<uint64_t>(k));
    for (int j = 0; j < per_block && k * per_block + j < n; ++j) out[k * per_block + j] = fill(k * per_block + j, b, j);
  }
}

template <typename T>
struct UniformFill {
  int bits;
  __device__ T operator()(int64_t, const philox::Block& b, int j) const {
    if constexpr (std::is_same_v<T, double>) return philox::uniform_double(random::word64_of(b, j));
    else return convert<T>(philox::uniform_float(b.w[j], bits));
  }
};

template <typename T>
struct NormalFill {
  __device__ T operator()(int64_t, const philox::Block& b, int j) const {
    if constexpr (std::is_same_v<T, double>) return random::normal_double(b, j);
    else return convert<T>(random::normal_float(b, j));
  }
};

template <typename T>
struct RandintFill {
  int64_t low;
  uint64_t range;
  __device__ T operator()(int64_t, const philox::Block& b, int j) const {
    return convert<T>(static_cast<int64_t>(static_cast<uint64_t>(low) + random::word64_of(b, j) % range));
  }
};

template <typename T, typename P>
struct BernoulliFill {
  const P* probs;  // null: use p
  float p;
  __device__ T operator()(int64_t i, const philox::Block& b, int j) const {
    float q = probs ? static_cast<float>(convert<double>(probs[i])) : p;
    return convert<T>(philox::uniform_float(b.w[j], 24) < q);
  }
};

struct KeyFill {
  __device__ uint64_t operator()(int64_t, const philox::Block& b, int j) const { return random::word64_of(b, j); }
};

template <typename T>
__global__ void iota_kernel(T* out, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[i] = static_cast<T>(i);
}

template <typename T>
__global__ void cast_index_kernel(const int64_t* in, T* out, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[i] = convert<T>(in[i]);
}

}  // namespace

void RandomOp::forward_cuda(const TensorList& inputs, const TensorList& outputs) {
  const Tensor& out = outputs[0];
  const int64_t n = out.numel();
  if (n == 0) return;
  const int device = out.device().index;
  cuda::DeviceGuard guard(device);
  cudaStream_t s = cuda_detail::stream(device);
  auto launch = [&]<typename T, typename Fill>(T* ptr, int per_block, Fill fill) {
    const int64_t blocks = (n + per_block - 1) / per_block;
    block_kernel<<<cuda_ops::grid_for(blocks, device), cuda_ops::kBlock, 0, s>>>(ptr, n, seed, offset, per_block, fill);
    EMBER_CUDA_CHECK_LAUNCH();
  };
  switch (kind) {
    case RandomKind::Uniform:
      cuda_ops::dispatch<kFloatingSet>(out.dtype(), name(), [&]<typename T>() {
        launch(out.data_ptr<T>(), std::is_same_v<T, double> ? 2 : 4, UniformFill<T>{random::uniform_bits(out.dtype())});
      });
      break;
    case RandomKind::Normal:
      cuda_ops::dispatch<kFloatingSet>(out.dtype(), name(), [&]<typename T>() {
        launch(out.data_ptr<T>(), std::is_same_v<T, double> ? 2 : 4, NormalFill<T>{});
      });
      break;
    case RandomKind::Randint:
      cuda_ops::dispatch<kNumericSet>(out.dtype(), name(), [&]<typename T>() {
        launch(out.data_ptr<T>(), 2, RandintFill<T>{low, static_cast<uint64_t>(high) - static_cast<uint64_t>(low)});
      });
      break;
    case RandomKind::Bernoulli:
      cuda_ops::dispatch<kAllSet>(out.dtype(), name(), [&]<typename T>() {
        if (inputs.empty()) {
          launch(out.data_ptr<T>(), 4, BernoulliFill<T, float>{nullptr, static_cast<float>(p)});
        } else {
          cuda_ops::dispatch<kFloatingSet>(inputs[0].dtype(), name(), [&]<typename P>() {
            launch(out.data_ptr<T>(), 4, BernoulliFill<T, P>{inputs[0].data_ptr<P>(), 0.f});
          });
        }
      });
      break;
    case RandomKind::Randperm: {
      Tensor keys = empty_tensor({n}, kInt64, out.device(), "randperm");
      Tensor keys_sorted = empty_tensor({n}, kInt64, out.device(), "randperm");
      Tensor idx = empty_tensor({n}, kInt64, out.device(), "randperm");
      Tensor perm = empty_tensor({n}, kInt64, out.device(), "randperm");
      launch(reinterpret_cast<uint64_t*>(keys.data()), 2, KeyFill{});
      iota_kernel<<<cuda_ops::grid_for(n, device), cuda_ops::kBlock, 0, s>>>(idx.data_ptr<int64_t>(), n);
      EMBER_CUDA_CHECK_LAUNCH();
      auto* k_in = reinterpret_cast<const uint64_t*>(keys.data());
      auto* k_out = reinterpret_cast<uint64_t*>(keys_sorted.data());
      size_t temp_bytes = 0;
      EMBER_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, k_in, k_out, idx.data_ptr<int64_t>(),
                                                       perm.data_ptr<int64_t>(), n, 0, 64, s));
      Tensor temp = empty_tensor({static_cast<int64_t>(temp_bytes)}, kUInt8, out.device(), "randperm");
      EMBER_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp.data(), temp_bytes, k_in, k_out, idx.data_ptr<int64_t>(),
                                                       perm.data_ptr<int64_t>(), n, 0, 64, s));
      cuda_ops::dispatch<kNumericSet>(out.dtype(), name(), [&]<typename T>() {
        cast_index_kernel<<<cuda_ops::grid_for(n, device), cuda_ops::kBlock, 0, s>>>(perm.data_ptr<int64_t>(),
                                                                                     out.data_ptr<T>(), n);
      });
      EMBER_CUDA_CHECK_LAUNCH();
      break;
    }
  }
}

}  // namespace ember
