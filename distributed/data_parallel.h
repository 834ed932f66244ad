// Data parallelism: every rank holds the whole model, runs it on its own shard of each batch,
// and the gradients are averaged over the ranks during backward, so every rank's optimizer
// takes the same step (PyTorch's DistributedDataParallel).
//
//   auto pg = distributed::init_process_group();            // NCCL, torchrun's variables
//   auto model = std::make_shared<MyNet>();  model->to(pg->device());
//   distributed::DataParallel dp(model, pg);                // rank 0's weights everywhere
//   nn::SGD opt(model->parameters(), {...});
//   loss_fn(dp.forward(x_shard), y_shard).backward();       // gradients averaged on return
//   opt.step();
//
// How: gradients are copied into buckets (about 25 MiB; the first 1 MiB, so communication
// starts early) in reverse registration order — the order backward produces them. Each
// parameter's gradient-accumulation hook marks it ready; a bucket whose parameters are all
// ready is all-reduced (averaged) at once, on the process group's stream, while backward goes
// on computing earlier layers' gradients. Buckets start in the same order on every rank. When
// backward ends (a callback the engine runs) the remaining buckets start, ember's stream waits
// for all of them, and the averages are copied back into each parameter's grad().
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "distributed/process_group.h"
#include "runtime/tensor.h"

namespace ember {
class Model;
namespace nn {
class Module;
}
}  // namespace ember

namespace ember::distributed {

struct DataParallelOptions {
  /// Bytes of gradients per bucket (PyTorch's bucket_cap_mb = 25).
  size_t bucket_bytes = size_t{25} << 20;
  /// The first bucket's bytes: a small one starts communication early.
  size_t first_bucket_bytes = size_t{1} << 20;
  /// Parameters that get no gradient in a backward (a branch not taken) contribute zeros to
  /// the average. Off, such a backward is an error naming them (as PyTorch's
  /// find_unused_parameters=False).
  bool find_unused_parameters = false;
  /// In training mode, rank 0's buffers (batch-norm statistics) are copied to every rank
  /// before each forward, as PyTorch's broadcast_buffers.
  bool broadcast_buffers = true;
  /// After each synchronised backward every parameter's grad() is a view into its bucket, so
  /// the averages need no copying back (the next synchronised backward overwrites them; hold
  /// a clone to keep one). Off: each grad() is a tensor of its own (PyTorch's default).
  bool gradient_as_bucket_view = true;
  /// Buckets are reduced as soon as they are ready during backward. Off, they all start when
  /// backward ends (to measure what the overlap saves).
  bool overlap = true;
};

/// What the last synchronised backward did.
struct DataParallelStats {
  int buckets = 0;
  int launched_during_backward = 0;  // buckets whose all-reduce started before backward ended
  int synced_steps = 0;              // backward passes whose gradients were averaged
};

namespace detail {
class Reducer;
}

class DataParallel {
 public:
  /// Wraps a module already on the group's device: its parameters and buffers become rank
  /// 0's, and its parameters' gradients are averaged in every backward.
  DataParallel(std::shared_ptr<nn::Module> module, std::shared_ptr<ProcessGroup> group,
               DataParallelOptions options = {});
  /// Wraps a loaded model (it must outlive this object), already on the group's device.
  DataParallel(Model& model, std::shared_ptr<ProcessGroup> group, DataParallelOptions options = {});
  /// The general form: named parameters (those that require grad are synchronised) and
  /// buffers; call before_forward() before each forward yourself.
  DataParallel(std::vector<std::pair<std::string, Tensor>> parameters,
               std::vector<std::pair<std::string, Tensor>> buffers, std::shared_ptr<ProcessGroup> group,
               DataParallelOptions options = {});
  ~DataParallel();

  /// The wrapped module's forward (module form), after before_forward().
  Tensor forward(const Tensor& x);
  /// The wrapped model's forward (model form), after before_forward().
  TensorList forward(const TensorList& inputs);
  /// Copies rank 0's buffers to every rank (in training mode, with broadcast_buffers).
  void before_forward(bool training = true);

  /// While the returned guard lives, backward passes only accumulate gradients locally; the
  /// first backward after it averages the accumulated sums (gradient accumulation).
  class NoSync {
   public:
    explicit NoSync(std::shared_ptr<detail::Reducer> reducer);
    ~NoSync();
    NoSync(const NoSync&) = delete;
    NoSync& operator=(const NoSync&) = delete;

   private:
    std::shared_ptr<detail::Reducer> reducer_;
  };
  [[nodiscard]] NoSync no_sync();

  const DataParallelStats& stats() const;
  /// The device timeline of the last synchronised backward (CUDA groups; empty otherwise):
  /// for each bucket, in launch order, how many milliseconds before backward's last kernel
  /// its all-reduce had finished (negative: after). Positive values are communication that
  /// overlapped backward. Waits for the device.
  std::vector<double> last_step_overlap_ms() const;
  ProcessGroup& group() const { return *group_; }

 private:
  std::shared_ptr<ProcessGroup> group_;
  std::shared_ptr<detail::Reducer> reducer_;  // null in a world of one: nothing to do
  std::shared_ptr<nn::Module> module_;
  Model* model_ = nullptr;
  std::vector<Tensor> buffers_;
  std::vector<Tensor> flat_buffers_;  // one per dtype; the buffers are views into them
  DataParallelOptions options_;
  DataParallelStats single_rank_stats_;
};

/// Copies rank `root`'s tensors into every rank's, with one broadcast per dtype.
void broadcast_coalesced(ProcessGroup& group, const std::vector<Tensor>& tensors, int root = 0);

}  // namespace ember::distributed
