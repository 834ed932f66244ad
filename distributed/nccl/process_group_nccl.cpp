// The NCCL process group. Collectives run on a stream of the group's own: each waits (by an
// event) for the work ember's current stream has queued, and returns a Work whose wait() makes
// ember's stream wait for the collective in turn, so the host never blocks. A watchdog thread
// polls every pending collective's completion event and NCCL's asynchronous error; a
// collective older than the timeout or an error aborts the communicator (NCCL's kernels stop
// waiting for the dead peer) and, by default, ends the process with the reason on stderr.
#include <nccl.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

#include "distributed/process_group.h"
#include "distributed/tcp.h"
#include "ops/creation.h"
#include "runtime/cuda/runtime.h"
#include "runtime/error.h"

namespace ember::distributed {

namespace {

using Clock = std::chrono::steady_clock;

std::string nccl_message(ncclResult_t r, ncclComm_t comm) {
  std::string s = ncclGetErrorString(r);
  const char* last = ncclGetLastError(comm);
  if (last && *last) s += str_cat(" (", last, ")");
  return s;
}

ncclDataType_t nccl_type(DType t) {
  switch (t) {
    case DType::Int8: return ncclInt8;
    case DType::UInt8: return ncclUint8;
    case DType::Int32: return ncclInt32;
    case DType::Int64: return ncclInt64;
    case DType::Float16: return ncclFloat16;
    case DType::BFloat16: return ncclBfloat16;
    case DType::Float32: return ncclFloat32;
    case DType::Float64: return ncclFloat64;
    default: break;
  }
  throw_error(ErrorCode::Unsupported, str_cat("[nccl process group] no NCCL type for ", t));
}

ncclRedOp_t nccl_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum: return ncclSum;
    case ReduceOp::Avg: return ncclAvg;
    case ReduceOp::Max: return ncclMax;
    case ReduceOp::Min: return ncclMin;
  }
  return ncclSum;
}

std::shared_ptr<void> new_event(bool timing = false) {
  cudaEvent_t e = nullptr;
  EMBER_CUDA_CHECK(cudaEventCreateWithFlags(&e, timing ? cudaEventDefault : cudaEventDisableTiming));
  return std::shared_ptr<void>(e, [](void* p) { cudaEventDestroy(static_cast<cudaEvent_t>(p)); });
}

cudaEvent_t as_event(const std::shared_ptr<void>& e) { return static_cast<cudaEvent_t>(e.get()); }

// A queued collective the watchdog follows until its event completes.
struct Pending {
  std::shared_ptr<void> done;
  TensorList keep;  // the tensors NCCL reads and writes stay allocated until it has finished
  std::string what;
  Clock::time_point start;
};

// What the group, its Works and its watchdog share.
struct State {
  ncclComm_t comm = nullptr;
  int device = 0, rank = 0;
  std::chrono::milliseconds timeout{};
  bool exit_on_failure = true;
  std::optional<cuda::Stream> stream;  // the collectives' own

  std::mutex mutex;  // guards everything below
  std::condition_variable wake;
  std::deque<Pending> pending;
  bool stop = false;
  bool aborted = false;
  std::string failure;  // set once, when the group fails
  uint64_t seq = 0;

  void throw_if_failed() {
    std::lock_guard<std::mutex> lock(mutex);
    if (!failure.empty()) throw_error(ErrorCode::Nccl, failure);
  }

  // Called with `mutex` held.
  void fail(const std::string& why) {
    if (!failure.empty()) return;
    failure = str_cat("[nccl process group] rank ", rank, ": ", why);
    if (!aborted) {
      ncclCommAbort(comm);  // NCCL's kernels stop waiting for peers that will not come
      aborted = true;
    }
    if (exit_on_failure) {
      std::fprintf(stderr, "%s; the communicator was aborted; exiting (status 1)\n", failure.c_str());
      std::fflush(stderr);
      std::_Exit(1);  // the main thread may be blocked in a kernel: no exception could reach it
    }
  }
};

void watch(const std::shared_ptr<State>& s) {
  cudaSetDevice(s->device);  // this thread only ever touches the group's device
  std::unique_lock<std::mutex> lock(s->mutex);
  while (!s->stop) {
    s->wake.wait_for(lock, std::chrono::milliseconds(100));
    if (s->aborted) continue;
    TensorList finished;  // released outside the lock
    while (!s->pending.empty()) {
      Pending& p = s->pending.front();
      const cudaError_t q = cudaEventQuery(as_event(p.done));
      if (q == cudaSuccess) {
        for (Tensor& t : p.keep) finished.push_back(std::move(t));
        s->pending.pop_front();
        continue;
      }
      if (q != cudaErrorNotReady) {
        cudaGetLastError();
        s->fail(str_cat(p.what, " failed on the device: ", cudaGetErrorString(q)));
      } else if (Clock::now() - p.start > s->timeout) {
        s->fail(str_cat(p.what, " did not finish within the timeout of ",
                        std::chrono::duration_cast<std::chrono::seconds>(s->timeout).count(),
                        " s (a rank died, hangs, or called other collectives)"));
      }
      break;  // collectives finish in order: the next cannot be done before this one
    }
    if (!s->aborted) {
      ncclResult_t async = ncclSuccess;
      if (ncclCommGetAsyncError(s->comm, &async) == ncclSuccess && async != ncclSuccess && async != ncclInProgress)
        s->fail(str_cat("NCCL reported an asynchronous error: ", nccl_message(async, s->comm)));
    }
    lock.unlock();
    finished.clear();
    lock.lock();
  }
}

class NcclWork final : public Work {
 public:
  NcclWork(std::shared_ptr<State> s, std::shared_ptr<void> done) : state_(std::move(s)), done_(std::move(done)) {}
  void wait() override {
    state_->throw_if_failed();
    cuda::DeviceGuard guard(state_->device);
    EMBER_CUDA_CHECK(cudaStreamWaitEvent(cuda_detail::stream(state_->device), as_event(done_), 0));
  }
  bool is_completed() override { return cudaEventQuery(as_event(done_)) == cudaSuccess; }
  std::optional<double> finished_ms_before(const cuda::Event& marker) override {
    synchronize();
    marker.synchronize();
    float ms = 0;
    EMBER_CUDA_CHECK(cudaEventElapsedTime(&ms, as_event(done_), static_cast<cudaEvent_t>(marker.handle())));
    return ms;
  }
  // Blocks the host until done; a failure (the watchdog's timeout included) throws.
  void synchronize() {
    for (;;) {
      state_->throw_if_failed();
      const cudaError_t q = cudaEventQuery(as_event(done_));
      if (q == cudaSuccess) return;
      if (q != cudaErrorNotReady) EMBER_CUDA_CHECK(q);
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }

 private:
  std::shared_ptr<State> state_;
  std::shared_ptr<void> done_;
};

class NcclGroup final : public ProcessGroup {
 public:
  NcclGroup(const DistEnv& env, std::shared_ptr<State> s)
      : ProcessGroup(env.rank, env.world_size), state_(std::move(s)), ready_(new_event()) {
    watchdog_ = std::thread([st = state_] { watch(st); });
  }

  ~NcclGroup() override {
    {
      std::lock_guard<std::mutex> lock(state_->mutex);
      state_->stop = true;
    }
    state_->wake.notify_all();
    watchdog_.join();
    // Let queued collectives finish (bounded by the timeout), then free the communicator; one
    // that cannot finish is aborted rather than waited on forever.
    std::lock_guard<std::mutex> lock(state_->mutex);
    if (state_->aborted) return;
    const Clock::time_point deadline = Clock::now() + state_->timeout;
    bool done = false;
    while (!done && Clock::now() < deadline) {
      done = cudaStreamQuery(static_cast<cudaStream_t>(state_->stream->handle())) != cudaErrorNotReady;
      if (!done) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (done) ncclCommDestroy(state_->comm);
    else ncclCommAbort(state_->comm);
    state_->aborted = true;
  }

  Backend backend() const override { return Backend::Nccl; }
  Device device() const override { return Device::cuda(state_->device); }

  std::shared_ptr<Work> all_reduce_async(const Tensor& t, ReduceOp op) override {
    check_reduce(t, op, "all_reduce");
    t.bump_version();  // written in place, as by any in-place op
    return launch(str_cat("all_reduce (", reduce_op_name(op), ") of ", t.numel(), " ", t.dtype(), " elements"), {t},
                  [&](ncclComm_t c, cudaStream_t s) {
                    return ncclAllReduce(t.data(), t.data(), static_cast<size_t>(t.numel()), nccl_type(t.dtype()),
                                         nccl_op(op), c, s);
                  });
  }

  void broadcast(const Tensor& t, int root) override {
    check_tensor(t, "broadcast", "the tensor");
    EMBER_CHECK(root >= 0 && root < size(), InvalidArgument, "[broadcast] root ", root, " is outside a world of ",
                size());
    t.bump_version();
    launch(str_cat("broadcast from rank ", root, " of ", t.numel(), " ", t.dtype(), " elements"), {t},
           [&](ncclComm_t c, cudaStream_t s) {
             return ncclBroadcast(t.data(), t.data(), static_cast<size_t>(t.numel()), nccl_type(t.dtype()), root, c, s);
           })
        ->wait();
  }

  void all_gather(const Tensor& input, const Tensor& output) override {
    check_all_gather(input, output);
    output.bump_version();
    launch(str_cat("all_gather of ", input.numel(), " ", input.dtype(), " elements"), {input, output},
           [&](ncclComm_t c, cudaStream_t s) {
             return ncclAllGather(input.data(), output.data(), static_cast<size_t>(input.numel()),
                                  nccl_type(input.dtype()), c, s);
           })
        ->wait();
  }

  void reduce_scatter(const Tensor& input, const Tensor& output, ReduceOp op) override {
    check_reduce_scatter(input, output, op);
    output.bump_version();
    launch(str_cat("reduce_scatter (", reduce_op_name(op), ") of ", input.numel(), " ", input.dtype(), " elements"),
           {input, output},
           [&](ncclComm_t c, cudaStream_t s) {
             return ncclReduceScatter(input.data(), output.data(), static_cast<size_t>(output.numel()),
                                      nccl_type(input.dtype()), nccl_op(op), c, s);
           })
        ->wait();
  }

  void barrier() override {
    Tensor token = zeros({1}, TensorOptions{DType::Int32, device()});
    auto work = launch("barrier", {token}, [&](ncclComm_t c, cudaStream_t s) {
      return ncclAllReduce(token.data(), token.data(), 1, ncclInt32, ncclSum, c, s);
    });
    std::static_pointer_cast<NcclWork>(work)->synchronize();
  }

 private:
  template <typename Enqueue>
  std::shared_ptr<Work> launch(const std::string& what, TensorList keep, const Enqueue& enqueue) {
    std::lock_guard<std::mutex> serial(launch_mutex_);  // one communicator: one caller at a time
    state_->throw_if_failed();
    cuda::DeviceGuard guard(state_->device);
    cudaStream_t comm_stream = static_cast<cudaStream_t>(state_->stream->handle());
    // The collective starts after what ember's stream has queued (the tensor's producers).
    EMBER_CUDA_CHECK(cudaEventRecord(as_event(ready_), cuda_detail::stream(state_->device)));
    EMBER_CUDA_CHECK(cudaStreamWaitEvent(comm_stream, as_event(ready_), 0));
    const ncclResult_t r = enqueue(state_->comm, comm_stream);
    EMBER_CHECK(r == ncclSuccess, Nccl, "[nccl process group] rank ", rank(), ": ", what, " failed: ",
                nccl_message(r, state_->comm));
    std::shared_ptr<void> done = new_event(/*timing=*/true);  // for Work::finished_ms_before
    EMBER_CUDA_CHECK(cudaEventRecord(as_event(done), comm_stream));
    {
      std::lock_guard<std::mutex> lock(state_->mutex);
      state_->pending.push_back({done, std::move(keep), str_cat(what, " (collective #", state_->seq++, ")"),
                                 Clock::now()});
    }
    state_->wake.notify_all();
    return std::make_shared<NcclWork>(state_, std::move(done));
  }

  std::shared_ptr<State> state_;
  std::shared_ptr<void> ready_;
  std::mutex launch_mutex_;
  std::thread watchdog_;
};

}  // namespace

bool nccl_available() { return true; }

std::shared_ptr<ProcessGroup> make_nccl_group(const DistEnv& env, const ProcessGroupOptions& options) {
  const int device = options.device >= 0 ? options.device : env.local_rank;
  const int count = cuda::device_count();
  EMBER_CHECK(device < count, InvalidArgument, "[nccl process group] rank ", env.rank, " wants cuda:", device,
              " (LOCAL_RANK ", env.local_rank, ") but this machine has ", count,
              " GPU(s): start at most one rank per GPU");
  // Rank 0 makes the communicator's id; the rendezvous hands it to every rank.
  ncclUniqueId id{};
  std::vector<uint8_t> bytes(sizeof id);
  if (env.rank == 0) {
    const ncclResult_t r = ncclGetUniqueId(&id);
    EMBER_CHECK(r == ncclSuccess, Nccl, "[nccl process group] ncclGetUniqueId failed: ", ncclGetErrorString(r));
    std::memcpy(bytes.data(), &id, sizeof id);
  }
  bytes = tcp::connect_star(env, bytes, tcp::Clock::now() + options.timeout).payload;
  EMBER_CHECK(bytes.size() == sizeof id, Nccl, "[nccl process group] rank 0 sent a ", bytes.size(),
              "-byte id, expected ", sizeof id);
  std::memcpy(&id, bytes.data(), sizeof id);

  auto state = std::make_shared<State>();
  state->device = device;
  state->rank = env.rank;
  state->timeout = options.timeout;
  state->exit_on_failure = options.exit_on_failure;
  // The rank's GPU becomes the calling thread's current device for good (PyTorch's scripts call
  // torch.cuda.set_device for this): raw CUDA calls in the app then go to the right GPU, and no
  // rank opens a context on cuda:0 that it does not use.
  EMBER_CUDA_CHECK(cudaSetDevice(device));
  state->stream = cuda::Stream::create(device);
  const ncclResult_t r = ncclCommInitRank(&state->comm, env.world_size, id, env.rank);
  EMBER_CHECK(r == ncclSuccess, Nccl, "[nccl process group] rank ", env.rank, " could not join the communicator of ",
              env.world_size, " ranks on cuda:", device, ": ", nccl_message(r, nullptr));
  return std::make_shared<NcclGroup>(env, std::move(state));
}

}  // namespace ember::distributed
