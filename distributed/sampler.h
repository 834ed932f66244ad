// Sharding a dataset over the ranks of a data-parallel job, as PyTorch's DistributedSampler:
// every rank draws the same permutation for an epoch and takes every world-size-th index from
// its rank, so the ranks' shards are disjoint and together cover the dataset.
#pragma once

#include <cstdint>
#include <vector>

namespace ember::distributed {

struct ShardOptions {
  bool shuffle = true;
  uint64_t seed = 0;
  int64_t epoch = 0;  // a new permutation each epoch
  /// false: the list is padded by repeating its start so every rank gets ceil(size / world)
  /// indices; true: truncated so every rank gets floor(size / world).
  bool drop_last = false;
};

/// The indices of `size` samples that `rank` of `world_size` takes. The permutation depends only
/// on (seed, epoch), never on the platform.
std::vector<int64_t> shard_indices(int64_t size, int rank, int world_size, const ShardOptions& options = {});

}  // namespace ember::distributed
