#include "distributed/process_group.h"

#include "ops/copy.h"
#include "runtime/cuda/cuda.h"
#include "runtime/error.h"

namespace ember::distributed {

const char* reduce_op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum: return "sum";
    case ReduceOp::Avg: return "avg";
    case ReduceOp::Max: return "max";
    case ReduceOp::Min: return "min";
  }
  return "?";
}

const char* backend_name(Backend b) {
  switch (b) {
    case Backend::Auto: return "auto";
    case Backend::Nccl: return "nccl";
    case Backend::Tcp: return "tcp";
  }
  return "?";
}

void ProcessGroup::check_tensor(const Tensor& t, const char* op, const char* name) const {
  EMBER_CHECK(t.defined(), InvalidArgument, "[", op, "] ", name, " is undefined");
  EMBER_CHECK(t.device() == device(), DeviceMismatch, "[", op, "] expected ", name, " on ", device(),
              " (the process group's device), got ", t.device());
  EMBER_CHECK(t.is_contiguous(), InvalidArgument, "[", op, "] expected a contiguous ", name,
              " (collectives work on its memory in place; call contiguous() first)");
  EMBER_CHECK(t.dtype() != DType::Bool, InvalidArgument, "[", op, "] ", name,
              " is bool: reduce a uint8 tensor instead");
}

void ProcessGroup::check_reduce(const Tensor& t, ReduceOp op, const char* name) const {
  check_tensor(t, name, "the tensor");
  EMBER_CHECK(op != ReduceOp::Avg || is_floating(t.dtype()), InvalidArgument, "[", name,
              "] avg needs a floating-point tensor, got ", t.dtype());
}

void ProcessGroup::check_all_gather(const Tensor& input, const Tensor& output) const {
  check_tensor(input, "all_gather", "input");
  check_tensor(output, "all_gather", "output");
  EMBER_CHECK(output.numel() == input.numel() * size() && output.dtype() == input.dtype(), InvalidArgument,
              "[all_gather] expected an output of ", input.numel() * size(), " ", input.dtype(),
              " elements (world size × input), got ", output.numel(), " ", output.dtype());
}

void ProcessGroup::check_reduce_scatter(const Tensor& input, const Tensor& output, ReduceOp op) const {
  check_tensor(output, "reduce_scatter", "output");
  check_reduce(input, op, "reduce_scatter");
  EMBER_CHECK(input.numel() == output.numel() * size() && output.dtype() == input.dtype(), InvalidArgument,
              "[reduce_scatter] expected an input of ", output.numel() * size(), " ", output.dtype(),
              " elements (world size × output), got ", input.numel(), " ", input.dtype());
}

namespace {

// A world of one: every collective leaves its tensors as they are (an average over one rank is
// the value itself). DataParallel and scripts written for several ranks run unchanged, with or
// without NCCL in the build.
class SingleRankGroup final : public ProcessGroup {
 public:
  explicit SingleRankGroup(Device device) : ProcessGroup(0, 1), device_(device) {}
  Backend backend() const override { return Backend::Auto; }
  Device device() const override { return device_; }

  std::shared_ptr<Work> all_reduce_async(const Tensor& t, ReduceOp op) override {
    check_reduce(t, op, "all_reduce");
    struct Done final : Work {
      void wait() override {}
      bool is_completed() override { return true; }
    };
    return std::make_shared<Done>();
  }
  void broadcast(const Tensor& t, int root) override {
    check_tensor(t, "broadcast", "the tensor");
    EMBER_CHECK(root == 0, InvalidArgument, "[broadcast] root ", root, " is outside a world of 1");
  }
  void all_gather(const Tensor& input, const Tensor& output) override {
    check_tensor(input, "all_gather", "input");
    check_tensor(output, "all_gather", "output");
    EMBER_CHECK(output.numel() == input.numel() && output.dtype() == input.dtype(), InvalidArgument,
                "[all_gather] expected an output of ", input.numel(), " ", input.dtype(),
                " elements (world size × input), got ",
                output.numel(), " ", output.dtype());
    if (!output.is_same(input)) copy_(output, input.view(output.sizes()));
  }
  void reduce_scatter(const Tensor& input, const Tensor& output, ReduceOp op) override {
    check_reduce_scatter(input, output, op);
    if (!output.is_same(input)) copy_(output, input.view(output.sizes()));
  }
  void barrier() override {}

 private:
  Device device_;
};

}  // namespace

std::shared_ptr<ProcessGroup> init_process_group(Backend backend, const DistEnv& env,
                                                 const ProcessGroupOptions& options) {
  const bool gpu = cuda::device_count() > 0;
  if (backend == Backend::Auto) backend = nccl_available() && gpu ? Backend::Nccl : Backend::Tcp;
  if (env.world_size == 1) {
    // NCCL's device, or the CPU: the same tensors a larger world would reduce.
    const int device = options.device >= 0 ? options.device : env.local_rank;
    return std::make_shared<SingleRankGroup>(backend == Backend::Nccl ? Device::cuda(device) : Device::cpu());
  }
  return backend == Backend::Nccl ? make_nccl_group(env, options) : make_tcp_group(env, options);
}

}  // namespace ember::distributed
