// CPU parallelism: OpenMP with an ember-wide thread count.
#pragma once

#include <cstdint>
#include <exception>
#include <functional>

namespace ember {

/// Sets how many CPU threads ember's kernels (and Eigen's GEMM) use; n >= 1.
void set_num_threads(int n);
/// The thread count kernels use (default: the machine's cores, or OMP_NUM_THREADS).
int get_num_threads();

/// Below this many elements an element-wise kernel runs on one thread: a parallel region
/// costs a few microseconds.
inline constexpr int64_t kGrainSize = 32768;

/// Calls fn(begin, end) over [begin, end) split in contiguous chunks across threads when the
/// range is larger than `grain`. Exceptions from fn are rethrown on the calling thread.
void parallel_for(int64_t begin, int64_t end, int64_t grain,
                  const std::function<void(int64_t, int64_t)>& fn);

}  // namespace ember
