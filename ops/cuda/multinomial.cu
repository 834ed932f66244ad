// CUDA kernel of multinomial's inverse-CDF step: a thread per draw, binary search in its row.
#include "ops/cuda/loops.cuh"
#include "ops/random.h"

namespace ember {

namespace {

template <typename T>
__global__ void search_cdf(const T* __restrict__ cdf, const T* __restrict__ u, int64_t* __restrict__ out, int64_t draws,
                           int64_t n, int64_t k) {
  const int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x;
  if (i >= draws) return;
  const T* row = cdf + (i / k) * n;
  const T target = u[i] * row[n - 1];
  int64_t lo = 0, hi = n;  // the first index whose cdf exceeds target
  while (lo < hi) {
    const int64_t mid = (lo + hi) / 2;
    if (row[mid] > target) hi = mid;
    else lo = mid + 1;
  }
  while (lo >= n || (lo > 0 && row[lo] == row[lo - 1])) --lo;  // u·total rounded up to total
  out[i] = lo;
}

}  // namespace

void SearchCdfOp::forward_cuda(const TensorList& inputs, const TensorList& outputs) {
  const int64_t rows = inputs[0].size(0), n = inputs[0].size(1), k = inputs[1].size(1);
  const int64_t draws = rows * k;
  if (draws == 0) return;
  cudaStream_t stream = cuda_detail::stream(inputs[0].device().index);
  const unsigned blocks = static_cast<unsigned>((draws + cuda_ops::kBlock - 1) / cuda_ops::kBlock);
  cuda_ops::dispatch<dtype_bit(kFloat32) | dtype_bit(kFloat64)>(inputs[0].dtype(), name(), [&]<typename T>() {
    search_cdf<T><<<blocks, cuda_ops::kBlock, 0, stream>>>(inputs[0].data_ptr<T>(), inputs[1].data_ptr<T>(),
                                                           outputs[0].data_ptr<int64_t>(), draws, n, k);
    EMBER_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace ember
