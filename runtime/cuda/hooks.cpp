// The runtime's CUDA hooks in a CUDA build: device checks, the allocator, copies between
// devices, synchronisation.
#include <deque>
#include <mutex>

#include "runtime/allocator.h"
#include "runtime/cuda/runtime.h"
#include "runtime/cuda_hooks.h"

namespace ember::cuda_detail {

Allocator& allocator();
Storage pinned_storage(size_t nbytes);

namespace {

// Host memory read or written by an asynchronous copy stays alive until the copy's event has
// completed; finished entries are dropped on every later copy.
class PendingCopies {
 public:
  void add(int device, cudaStream_t s, std::shared_ptr<void> keep_alive) {
    cuda::DeviceGuard guard(device);
    cudaEvent_t e = nullptr;
    EMBER_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    EMBER_CUDA_CHECK(cudaEventRecord(e, s));
    std::lock_guard<std::mutex> lock(mutex_);
    pending_.push_back({e, std::move(keep_alive)});
  }

  void collect() {
    std::lock_guard<std::mutex> lock(mutex_);
    while (!pending_.empty()) {
      cudaError_t q = cudaEventQuery(pending_.front().event);
      if (q == cudaErrorNotReady) break;
      if (q != cudaSuccess) cudaGetLastError();
      cudaEventDestroy(pending_.front().event);
      pending_.pop_front();
    }
  }

 private:
  struct Entry {
    cudaEvent_t event;
    std::shared_ptr<void> keep_alive;
  };
  std::mutex mutex_;
  std::deque<Entry> pending_;
};

PendingCopies& pending() {
  static PendingCopies* p = new PendingCopies;
  return *p;
}

// A copy captured into a CUDA graph runs at each replay, not now: whoever captures owns the
// host memory for the graph's lifetime (an event recorded in a capture cannot be queried).
bool capturing(cudaStream_t s) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  EMBER_CUDA_CHECK(cudaStreamIsCapturing(s, &status));
  return status != cudaStreamCaptureStatusNone;
}

class Hooks final : public CudaHooks {
 public:
  bool is_built() const override { return true; }
  int device_count() const override { return cuda::device_count(); }
  Allocator& allocator(Device device) const override {
    check_cuda_device(device, "allocate");
    return cuda_detail::allocator();
  }
  Storage pinned_storage(size_t nbytes) const override { return cuda_detail::pinned_storage(nbytes); }
  void synchronize(Device device) const override { cuda::synchronize(device.index); }

  void copy_bytes(void* dst, Device dd, const void* src, Device sd, size_t n, bool non_blocking,
                  std::shared_ptr<void> keep_alive) const override {
    pending().collect();
    if (dd.is_cuda() && sd.is_cuda() && dd.index != sd.index) {
      copy_peer(dst, dd.index, src, sd.index, n, non_blocking);
      return;
    }
    const int device = dd.is_cuda() ? dd.index : sd.index;
    cuda::DeviceGuard guard(device);
    cudaStream_t s = stream(device);
    cudaMemcpyKind kind = dd.is_cuda() ? (sd.is_cuda() ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
                                       : cudaMemcpyDeviceToHost;
    EMBER_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, kind, s));
    if (!non_blocking) EMBER_CUDA_CHECK(cudaStreamSynchronize(s));
    else if (kind != cudaMemcpyDeviceToDevice && keep_alive && !capturing(s)) pending().add(device, s, std::move(keep_alive));
  }

 private:
  // Across devices: the destination's stream waits for the source's queued work, and the
  // source's stream waits for the copy before it may reuse the source memory.
  static void copy_peer(void* dst, int dd, const void* src, int sd, size_t n, bool non_blocking) {
    cudaStream_t ss = stream(sd), ds = stream(dd);
    cuda::Event src_ready(sd, false), copied(dd, false);
    src_ready.record(cuda::Stream::current(sd));
    src_ready.wait(cuda::Stream::current(dd));
    {
      cuda::DeviceGuard guard(dd);
      EMBER_CUDA_CHECK(cudaMemcpyPeerAsync(dst, dd, src, sd, n, ds));
    }
    copied.record(cuda::Stream::current(dd));
    copied.wait(cuda::Stream::current(sd));
    if (!non_blocking) EMBER_CUDA_CHECK(cudaStreamSynchronize(ds));
    (void)ss;
  }
};

}  // namespace
}  // namespace ember::cuda_detail

namespace ember {

const CudaHooks& cuda_hooks() {
  static cuda_detail::Hooks hooks;
  return hooks;
}

void check_cuda_device(Device device, const char* op) {
  int n = cuda::device_count();
  EMBER_CHECK(n > 0, Cuda, "[", op, "] no CUDA device is available (the driver found none)");
  EMBER_CHECK(device.index >= 0 && device.index < n, Cuda, "[", op, "] no CUDA device ", device, " (", n,
              " device", n == 1 ? "" : "s", " visible)");
}

}  // namespace ember
