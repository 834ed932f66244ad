// A build without NCCL (a Jetson build, or -Dnccl=disabled): one-rank jobs work (no
// communication is needed), larger NCCL jobs are refused with the reason.
#include "distributed/process_group.h"
#include "runtime/error.h"

namespace ember::distributed {

bool nccl_available() { return false; }

std::shared_ptr<ProcessGroup> make_nccl_group(const DistEnv& env, const ProcessGroupOptions&) {
  throw_error(ErrorCode::Unsupported,
              str_cat("[process group] a job of ", env.world_size,
                      " ranks needs NCCL, and this build of ember has none (built with -Dnccl=disabled or "
                      "without NCCL found, as on Jetson); one-rank jobs run without it, and CPU tensors can "
                      "use Backend::Tcp"));
}

}  // namespace ember::distributed
