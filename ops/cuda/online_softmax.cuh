// The running maximum and rescaled sum of exponentials of a stream of values (an online
// softmax: each value read once) and its warp reduction; shared by the softmax and
// cross-entropy kernels.
#pragma once

#include <cmath>

namespace ember::cuda_ops {

template <typename A>
struct OnlineSoftmax {
  A max = -INFINITY, sum = 0;
  __device__ void add(A v) {
    if (v == -INFINITY) return;  // a masked logit adds nothing (and exp(-inf - -inf) would be NaN)
    if (v != v) {  // a NaN makes the row NaN, as in PyTorch: held as the maximum too, so that a
      max = v;     // merge cannot drop it (a lane that saw only a NaN kept max −inf, and merges
      sum = v;     // skip a part whose maximum is −inf)
      return;
    }
    if (v > max) {
      sum = sum * exp(max - v) + A(1);
      max = v;
    } else {
      sum += exp(v - max);
    }
  }
  __device__ void merge(A other_max, A other_sum) {
    if (other_max == -INFINITY) return;
    if (max == -INFINITY) {
      max = other_max;
      sum = other_sum;
      return;
    }
    const A m = max > other_max ? max : other_max;
    sum = sum * exp(max - m) + other_sum * exp(other_max - m);
    max = m;
  }
};

template <typename A>
__device__ OnlineSoftmax<A> warp_merge(OnlineSoftmax<A> s) {
  for (int o = 16; o > 0; o >>= 1) {
    const A m = __shfl_xor_sync(0xffffffffu, s.max, o);
    const A z = __shfl_xor_sync(0xffffffffu, s.sum, o);
    s.merge(m, z);
  }
  return s;
}

}  // namespace ember::cuda_ops
