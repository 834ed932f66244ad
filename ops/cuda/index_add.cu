// index_select's backward along dim 0 (an embedding's) on CUDA, deterministic without atomics:
// the index is sorted stably (CUB's radix sort, so equal rows keep their positions' order),
// then each run of equal rows is summed by one thread per column, in that order, in opmath.
// Threads of a column read consecutive addresses of one gradient row, so loads coalesce.
#include <cub/device/device_radix_sort.cuh>

#include "ops/creation.h"
#include "ops/cuda/loops.cuh"
#include "ops/index.h"

namespace ember {

namespace {

constexpr int kColumns = 32, kPositions = 8;  // threads per block: columns x sorted positions

template <typename T>
__global__ void sum_runs(const T* grad, const int64_t* sorted_rows, const int64_t* order, T* out, int64_t n,
                         int64_t width, int64_t rows) {
  const int64_t i = int64_t{blockIdx.x} * kPositions + threadIdx.y;
  const int64_t c = int64_t{blockIdx.y} * kColumns + threadIdx.x;
  if (i >= n || c >= width) return;
  const int64_t row = sorted_rows[i];
  if ((i > 0 && sorted_rows[i - 1] == row) || row < 0 || row >= rows) return;  // not a run's start
  using M = cuda_ops::opmath_t<T>;
  M sum = 0;
  for (int64_t j = i; j < n && sorted_rows[j] == row; ++j) sum += cuda_ops::convert<M>(grad[order[j] * width + c]);
  out[row * width + c] = cuda_ops::convert<T>(sum);
}

}  // namespace

void IndexAddRowsOp::forward_cuda(const TensorList& inputs, const TensorList& outputs) {
  const Tensor& grad = inputs[0];
  const Tensor& out = outputs[0];
  const int64_t n = grad.sizes()[0], width = grad.sizes()[1], rows = out.sizes()[0];
  const Device device = grad.device();
  cudaStream_t stream = cuda_detail::stream(device.index);
  if (out.nbytes() > 0) EMBER_CUDA_CHECK(cudaMemsetAsync(out.data(), 0, out.nbytes(), stream));
  if (n == 0 || width == 0) return;
  EMBER_CHECK(n <= INT32_MAX, Unsupported, "[index_add_rows] at most 2^31 - 1 indices, got ", n);
  // Rows are in [0, rows): only the bits that can differ are sorted.
  int bits = 1;
  while (bits < 63 && (int64_t{1} << bits) < rows) ++bits;
  const Tensor positions = arange(0, n, 1, {kInt64, device});
  const Tensor sorted_rows = empty({n}, {kInt64, device}), order = empty({n}, {kInt64, device});
  auto sort = [&](void* temp, size_t& bytes) {
    EMBER_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp, bytes, inputs[1].data_ptr<int64_t>(),
                                                     sorted_rows.data_ptr<int64_t>(), positions.data_ptr<int64_t>(),
                                                     order.data_ptr<int64_t>(), static_cast<int>(n), 0, bits, stream));
  };
  size_t bytes = 0;
  sort(nullptr, bytes);
  const Tensor temp = empty({static_cast<int64_t>(std::max<size_t>(bytes, 1))}, {kUInt8, device});
  sort(temp.data(), bytes);
  const dim3 block(kColumns, kPositions);
  const dim3 grid(static_cast<unsigned>((n + kPositions - 1) / kPositions),
                  static_cast<unsigned>((width + kColumns - 1) / kColumns));
  EMBER_CHECK(grid.y <= 65535, Unsupported, "[index_add_rows] rows of at most ", 65535 * kColumns,
              " elements, got ", width);
  cuda_ops::dispatch<kFloatingSet>(grad.dtype(), name(), [&]<typename T>() {
    sum_runs<T><<<grid, block, 0, stream>>>(grad.data_ptr<T>(), sorted_rows.data_ptr<int64_t>(),
                                            order.data_ptr<int64_t>(), out.data_ptr<T>(), n, width, rows);
    EMBER_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace ember
