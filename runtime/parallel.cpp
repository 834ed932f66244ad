#include "runtime/parallel.h"

#include <omp.h>

#include <Eigen/Core>
#include <algorithm>
#include <atomic>
#include <mutex>

#include "runtime/error.h"

namespace ember {
namespace {

std::atomic<int> g_num_threads{0};  // 0: not set yet

int default_threads() { return std::max(1, omp_get_max_threads()); }

}  // namespace

void set_num_threads(int n) {
  EMBER_CHECK(n >= 1, InvalidArgument, "[set_num_threads] expected at least 1 thread, got ", n);
  g_num_threads.store(n);
  Eigen::setNbThreads(n);
}

int get_num_threads() {
  int n = g_num_threads.load();
  return n > 0 ? n : default_threads();
}

void parallel_for(int64_t begin, int64_t end, int64_t grain,
                  const std::function<void(int64_t, int64_t)>& fn) {
  int64_t n = end - begin;
  if (n <= 0) return;
  int threads = get_num_threads();
  if (threads == 1 || n <= grain || omp_in_parallel()) {
    fn(begin, end);
    return;
  }
  int64_t chunks = std::min<int64_t>(threads, (n + grain - 1) / grain);
  std::exception_ptr error;
  std::mutex error_mutex;
  auto run_chunk = [&](int64_t c) {
    int64_t b = begin + n * c / chunks, e = begin + n * (c + 1) / chunks;
    try {
      fn(b, e);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
    }
  };
  // The whole team for every region, as PyTorch's parallel_for does, threads past the chunk
  // count returning at once: a team sized to each region's chunks made libgomp re-form it
  // between ops, 2.8-8x slower on 16 cores (bench/RESULTS.md, session 17).
#pragma omp parallel num_threads(threads)
  {
    // Chunk c on thread c; a team smaller than asked for (OMP_THREAD_LIMIT) takes the rest in turn.
    for (int64_t c = omp_get_thread_num(); c < chunks; c += omp_get_num_threads()) run_chunk(c);
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace ember
