#include "distributed/sampler.h"

#include "runtime/error.h"

namespace ember::distributed {

namespace {

// splitmix64: a fully specified generator, so every rank and platform draws the same stream.
struct SplitMix64 {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n) (Lemire's multiply-shift with rejection: no modulo bias).
  uint64_t below(uint64_t n) {
    for (;;) {
      const unsigned __int128 m = static_cast<unsigned __int128>(next()) * n;
      const uint64_t low = static_cast<uint64_t>(m);
      if (low >= (0 - n) % n) return static_cast<uint64_t>(m >> 64);
    }
  }
};

}  // namespace

std::vector<int64_t> shard_indices(int64_t size, int rank, int world_size, const ShardOptions& o) {
  EMBER_CHECK(world_size >= 1 && rank >= 0 && rank < world_size, InvalidArgument, "[shard_indices] rank ", rank,
              " is outside a world of ", world_size);
  EMBER_CHECK(size >= 0, InvalidArgument, "[shard_indices] dataset size must be >= 0, got ", size);
  std::vector<int64_t> order(static_cast<size_t>(size));
  for (int64_t i = 0; i < size; ++i) order[static_cast<size_t>(i)] = i;
  if (o.shuffle) {
    SplitMix64 gen{o.seed * 0x100000001b3ULL ^ static_cast<uint64_t>(o.epoch)};
    for (int64_t i = size - 1; i > 0; --i)
      std::swap(order[static_cast<size_t>(i)], order[gen.below(static_cast<uint64_t>(i) + 1)]);
  }
  const int64_t per_rank = o.drop_last ? size / world_size : (size + world_size - 1) / world_size;
  const int64_t total = per_rank * world_size;
  std::vector<int64_t> mine;
  mine.reserve(static_cast<size_t>(per_rank));
  for (int64_t i = rank; i < total; i += world_size)
    mine.push_back(order[static_cast<size_t>(size > 0 ? i % size : 0)]);  // padding repeats the start
  return mine;
}

}  // namespace ember::distributed
