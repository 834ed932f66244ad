// Multi-rank checks of the process group and DataParallel, written once and run two ways: by
// the doctest suite with ranks as threads of one process (TCP backend, CPU, in CI) and by
// tests/dist_worker with ranks as processes (ember launch; NCCL on the GPU machine). Each
// returns the failures it found, empty when all is well.
#pragma once

#include <string>
#include <vector>

#include "distributed/process_group.h"

namespace ember::test {

using Failures = std::vector<std::string>;

/// Every collective for every dtype the group reduces, against values computed here, and the
/// errors for bad tensors.
Failures check_collectives(const std::shared_ptr<distributed::ProcessGroup>& group);

/// N steps of data-parallel SGD (each rank on its shard) give the parameters of single-process
/// SGD on the whole batch; with small buckets, with no_sync() gradient accumulation, and with
/// the overlap on (buckets start during backward) and off.
Failures check_data_parallel_training(const std::shared_ptr<distributed::ProcessGroup>& group);

/// A parameter unused on one rank: its gradient is the average with zeros under
/// find_unused_parameters; unused on every rank without the option: a clear error.
Failures check_unused_parameters(const std::shared_ptr<distributed::ProcessGroup>& group);

/// A small CNN (convolution, batch norm, ReLU, max pool, linear) on the group's device — for
/// NCCL, cuda:LOCAL_RANK, so ops on a GPU other than cuda:0 are exercised — trains data-parallel
/// like one process that runs each shard through the model and averages the losses (batch norm
/// normalises per shard, as it does under PyTorch's DDP).
Failures check_data_parallel_cnn(const std::shared_ptr<distributed::ProcessGroup>& group);

/// A loaded .ember model (the bundled digits MLP) trains data-parallel like on one process.
Failures check_data_parallel_model(const std::shared_ptr<distributed::ProcessGroup>& group, const std::string& model_path);

}  // namespace ember::test
