// CPU kernels of the random ops: one Philox block per group of elements, parallel over blocks.
#include <algorithm>
#include <numeric>
#include <vector>

#include "ops/random.h"
#include "ops/random_functors.h"
#include "runtime/dispatch.h"
#include "runtime/parallel.h"

namespace ember {

namespace {

// Calls fn(i, block, j) for every element i in [0, n), where element i is word-group j of
// `block` and each block holds `per_block` elements.
template <typename Fn>
void for_each_block(uint64_t seed, uint64_t offset, int64_t n, int per_block, const Fn& fn) {
  const int64_t blocks = (n + per_block - 1) / per_block;
  parallel_for(0, blocks, 1024, [&](int64_t b0, int64_t b1) {
    for (int64_t k = b0; k < b1; ++k) {
      philox::Block b = philox::generate(seed, offset + static_cast<uint64_t>(k));
      for (int j = 0; j < per_block && k * per_block + j < n; ++j) fn(k * per_block + j, b, j);
    }
  });
}

}  // namespace

void RandomOp::forward_cpu(const TensorList& inputs, const TensorList& outputs) {
  const Tensor& out = outputs[0];
  const int64_t n = out.numel();
  switch (kind) {
    case RandomKind::Uniform:
      dispatch<kFloatingSet>(out.dtype(), name(), [&]<typename T>() {
        T* o = out.data_ptr<T>();
        if constexpr (std::is_same_v<T, double>) {
          for_each_block(seed, offset, n, 2, [&](int64_t i, const philox::Block& b, int j) {
            o[i] = philox::uniform_double(random::word64_of(b, j));
          });
        } else {
          const int bits = random::uniform_bits(out.dtype());
          for_each_block(seed, offset, n, 4, [&](int64_t i, const philox::Block& b, int j) {
            o[i] = static_cast<T>(philox::uniform_float(b.w[j], bits));
          });
        }
      });
      break;
    case RandomKind::Normal:
      dispatch<kFloatingSet>(out.dtype(), name(), [&]<typename T>() {
        T* o = out.data_ptr<T>();
        if constexpr (std::is_same_v<T, double>) {
          for_each_block(seed, offset, n, 2,
                         [&](int64_t i, const philox::Block& b, int j) { o[i] = random::normal_double(b, j); });
        } else {
          for_each_block(seed, offset, n, 4, [&](int64_t i, const philox::Block& b, int j) {
            o[i] = static_cast<T>(random::normal_float(b, j));
          });
        }
      });
      break;
    case RandomKind::Randint: {
      const uint64_t range = static_cast<uint64_t>(high) - static_cast<uint64_t>(low);
      dispatch<kNumericSet>(out.dtype(), name(), [&]<typename T>() {
        T* o = out.data_ptr<T>();
        for_each_block(seed, offset, n, 2, [&](int64_t i, const philox::Block& b, int j) {
          o[i] = convert<T>(static_cast<int64_t>(static_cast<uint64_t>(low) + random::word64_of(b, j) % range));
        });
      });
      break;
    }
    case RandomKind::Bernoulli:
      dispatch<kAllSet>(out.dtype(), name(), [&]<typename T>() {
        T* o = out.data_ptr<T>();
        if (inputs.empty()) {
          const float q = static_cast<float>(p);
          for_each_block(seed, offset, n, 4, [&](int64_t i, const philox::Block& b, int j) {
            o[i] = convert<T>(philox::uniform_float(b.w[j], 24) < q);
          });
          return;
        }
        dispatch<kFloatingSet>(inputs[0].dtype(), name(), [&]<typename P>() {
          const P* probs = inputs[0].data_ptr<P>();
          for_each_block(seed, offset, n, 4, [&](int64_t i, const philox::Block& b, int j) {
            o[i] = convert<T>(philox::uniform_float(b.w[j], 24) < static_cast<float>(probs[i]));
          });
        });
      });
      break;
    case RandomKind::Randperm: {
      // Sort indices by random 64-bit keys (ties by index): the same permutation a parallel
      // stable sort produces on the GPU.
      std::vector<uint64_t> keys(n);
      for_each_block(seed, offset, n, 2,
                     [&](int64_t i, const philox::Block& b, int j) { keys[i] = random::word64_of(b, j); });
      std::vector<int64_t> perm(n);
      std::iota(perm.begin(), perm.end(), 0);
      std::stable_sort(perm.begin(), perm.end(), [&](int64_t a, int64_t c) { return keys[a] < keys[c]; });
      dispatch<kNumericSet>(out.dtype(), name(), [&]<typename T>() {
        T* o = out.data_ptr<T>();
        for (int64_t i = 0; i < n; ++i) o[i] = convert<T>(perm[i]);
      });
      break;
    }
  }
}

}  // namespace ember
