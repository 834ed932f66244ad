// A process group: the ranks of a job and the collectives they run together.
//
//   auto pg = ember::distributed::init_process_group();   // NCCL, from torchrun's variables
//   pg->all_reduce(grad, ReduceOp::Avg);                   // in place, on every rank
//
// Two backends. NCCL reduces CUDA tensors on cuda:LOCAL_RANK, on a stream of its own that is
// ordered after ember's current stream by an event (and ember's stream after it, where the
// result is used), so the host is not blocked. TCP reduces CPU tensors through rank 0 (a
// star; deterministic sums in rank order): for CPU jobs and for testing without GPUs.
//
// Faults: every collective is bounded by the timeout (default 10 minutes). With NCCL a
// watchdog thread watches each pending collective and NCCL's asynchronous errors; on a timeout
// or an error it aborts the communicator, so no rank hangs on a dead peer, reports which
// collective failed, and (by default) ends the process with status 1, as PyTorch does — the
// main thread may be blocked in a kernel that waits for the dead peer, so no exception could
// reach it. With the TCP backend a dead peer is an Io error from the collective.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "distributed/env.h"
#include "runtime/cuda/cuda.h"
#include "runtime/tensor.h"

namespace ember::distributed {

enum class ReduceOp { Sum, Avg, Max, Min };
const char* reduce_op_name(ReduceOp op);

enum class Backend {
  Auto,  // NCCL where this build has it and a GPU is visible, otherwise TCP
  Nccl,
  Tcp,
};
const char* backend_name(Backend b);

struct ProcessGroupOptions {
  /// Bounds the rendezvous and every collective.
  std::chrono::milliseconds timeout = std::chrono::minutes(10);
  /// NCCL: when the watchdog finds a timed-out or failed collective it aborts the
  /// communicator, prints what failed and ends the process (status 1). Off, it only aborts,
  /// and the next call on the group throws the error.
  bool exit_on_failure = true;
  /// NCCL: the device (default: cuda:LOCAL_RANK).
  int device = -1;
};

/// A collective that was queued but may not have finished.
class Work {
 public:
  virtual ~Work() = default;
  /// Orders ember's current stream after the collective (NCCL: no host wait); the tensor's
  /// new values are then visible to every op that follows. Throws if the group has failed.
  virtual void wait() = 0;
  /// True once the collective has finished on the device.
  virtual bool is_completed() = 0;
  /// On the device's timeline, how many milliseconds before `marker` (a recorded timing
  /// event, e.g. at the end of backward) the collective finished; negative: after it. Waits
  /// for both. nullopt where the backend keeps no device timeline (TCP, one rank).
  virtual std::optional<double> finished_ms_before(const cuda::Event&) { return std::nullopt; }
};

class ProcessGroup {
 public:
  virtual ~ProcessGroup() = default;
  int rank() const { return rank_; }
  int size() const { return size_; }
  virtual Backend backend() const = 0;
  /// The device of the tensors the group reduces (cuda:N for NCCL, cpu for TCP).
  virtual Device device() const = 0;

  // Every tensor is contiguous, on device(), and has the same shape and dtype on every rank
  // (TCP checks that and names the ranks that differ; NCCL cannot cheaply, and a mismatch is
  // undefined there, as in PyTorch). Avg needs a floating-point dtype.

  /// Reduces `t` over the ranks, in place, on every rank.
  void all_reduce(const Tensor& t, ReduceOp op = ReduceOp::Sum) { all_reduce_async(t, op)->wait(); }
  /// The same, returning before ember's stream waits for it: wait() before using `t` (data
  /// parallelism overlaps gradient reduction with the rest of backward this way).
  virtual std::shared_ptr<Work> all_reduce_async(const Tensor& t, ReduceOp op) = 0;
  /// Copies rank `root`'s `t` into every rank's `t`.
  virtual void broadcast(const Tensor& t, int root) = 0;
  /// output (size() × input's elements, rank-major) receives every rank's input.
  virtual void all_gather(const Tensor& input, const Tensor& output) = 0;
  /// Reduces input (size() × output's elements) over the ranks; rank r keeps the r-th part.
  virtual void reduce_scatter(const Tensor& input, const Tensor& output, ReduceOp op) = 0;
  /// Returns once every rank has reached it (the host waits).
  virtual void barrier() = 0;

 protected:
  ProcessGroup(int rank, int size) : rank_(rank), size_(size) {}
  /// Checks what every collective expects of a tensor.
  void check_tensor(const Tensor& t, const char* op, const char* name) const;
  /// Checks a collective's tensors: a reduction's op against its dtype (all_reduce), or the
  /// two tensors of all_gather / reduce_scatter (world size × the smaller one's elements).
  void check_reduce(const Tensor& t, ReduceOp op, const char* name) const;
  void check_all_gather(const Tensor& input, const Tensor& output) const;
  void check_reduce_scatter(const Tensor& input, const Tensor& output, ReduceOp op) const;

 private:
  int rank_, size_;
};

/// Joins the job the environment describes (env.h): rendezvous at MASTER_ADDR:MASTER_PORT,
/// then the backend's set-up. NCCL makes the rank's GPU the calling thread's current device. Throws Unsupported for NCCL in a build without it (a Jetson
/// build) when the world has more than one rank, Io for a failed rendezvous.
std::shared_ptr<ProcessGroup> init_process_group(Backend backend = Backend::Auto,
                                                 const DistEnv& env = env_from_environment(),
                                                 const ProcessGroupOptions& options = {});

/// True when this build has NCCL.
bool nccl_available();

// The backends (process_group_tcp.cpp, nccl/process_group_nccl.cpp or no_nccl.cpp).
std::shared_ptr<ProcessGroup> make_tcp_group(const DistEnv& env, const ProcessGroupOptions& options);
std::shared_ptr<ProcessGroup> make_nccl_group(const DistEnv& env, const ProcessGroupOptions& options);

}  // namespace ember::distributed
