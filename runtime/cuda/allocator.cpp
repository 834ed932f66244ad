// The CUDA allocator: CUDA's stream-ordered memory pools (cudaMallocFromPoolAsync), one pool
// per device with an unbounded release threshold, so freed blocks stay in the pool for reuse
// and allocation is a pool lookup rather than a driver call. Statistics, a memory cap, and on
// failure: release the pool's cached memory, retry once, then OutOfMemory.
#include <atomic>
#include <cstring>
#include <cstdio>
#include <mutex>
#include <vector>

#include "runtime/allocator.h"
#include "runtime/cuda/runtime.h"

namespace ember::cuda_detail {

namespace {

std::string gib(size_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GiB", static_cast<double>(bytes) / (1ull << 30));
  return buf;
}

struct DeviceMemory {
  cudaMemPool_t pool = nullptr;
  std::atomic<size_t> allocated{0}, peak{0}, count{0};
  std::atomic<size_t> cap{SIZE_MAX};
};

class CudaAllocator final : public Allocator {
 public:
  std::shared_ptr<void> allocate(size_t nbytes, Device device) override {
    if (nbytes == 0) return {};
    const int index = device.index;
    cuda::DeviceGuard guard(index);
    DeviceMemory& m = state(index);
    const size_t cap = m.cap.load();
    EMBER_CHECK(m.allocated.load() + nbytes <= cap, OutOfMemory, "[cuda allocator] cannot allocate ", gib(nbytes),
                " on cuda:", index, ": the memory cap is ", gib(cap), " and tensors hold ", gib(m.allocated.load()));
    // The block is freed on the stream it was allocated on; the deleter holds the stream, so
    // that a stream made for a thread that has since ended stays valid until its blocks go.
    const cuda::Stream owner = cuda::Stream::current(index);
    cudaStream_t s = static_cast<cudaStream_t>(owner.handle());
    void* p = nullptr;
    cudaError_t err = cudaMallocFromPoolAsync(&p, nbytes, m.pool, s);
    if (err == cudaErrorMemoryAllocation) {
      // Give the pool's cached blocks back to the driver and try once more.
      cudaGetLastError();
      EMBER_CUDA_CHECK(cudaDeviceSynchronize());
      EMBER_CUDA_CHECK(cudaMemPoolTrimTo(m.pool, 0));
      err = cudaMallocFromPoolAsync(&p, nbytes, m.pool, s);
    }
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      size_t free_bytes = 0, total = 0;
      cudaMemGetInfo(&free_bytes, &total);
      throw_error(ErrorCode::OutOfMemory,
                  str_cat("[cuda allocator] out of memory on cuda:", index, ": tried to allocate ", gib(nbytes), "; ",
                          gib(free_bytes), " free of ", gib(total), " total; ember's tensors hold ",
                          gib(m.allocated.load())));
    }
    EMBER_CUDA_CHECK(err);
    size_t now = m.allocated.fetch_add(nbytes) + nbytes;
    size_t peak = m.peak.load();
    while (now > peak && !m.peak.compare_exchange_weak(peak, now)) {
    }
    m.count.fetch_add(1);
    return std::shared_ptr<void>(p, [&m, owner, s, nbytes](void* q) {
      // Stream-ordered: the block returns to the pool once the stream's queued work is done.
      if (cudaFreeAsync(q, s) != cudaSuccess) cudaGetLastError();  // e.g. at process exit
      m.allocated.fetch_sub(nbytes);
      m.count.fetch_sub(1);
    });
  }

  DeviceMemory& state(int index) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (devices_.empty()) devices_ = std::vector<DeviceMemory>(cuda::device_count());
    DeviceMemory& m = devices_.at(index);
    if (!m.pool) {
      cudaMemPoolProps props{};
      props.allocType = cudaMemAllocationTypePinned;
      props.location.type = cudaMemLocationTypeDevice;
      props.location.id = index;
      EMBER_CUDA_CHECK(cudaMemPoolCreate(&m.pool, &props));
      uint64_t threshold = UINT64_MAX;  // keep freed memory for reuse
      EMBER_CUDA_CHECK(cudaMemPoolSetAttribute(m.pool, cudaMemPoolAttrReleaseThreshold, &threshold));
    }
    return m;
  }

 private:
  std::mutex mutex_;
  std::vector<DeviceMemory> devices_;
};

}  // namespace

CudaAllocator& cuda_allocator() {
  static CudaAllocator* a = new CudaAllocator;  // never destroyed: tensors may outlive main
  return *a;
}

Allocator& allocator() { return cuda_allocator(); }

Storage pinned_storage(size_t nbytes) {
  void* p = nullptr;
  if (nbytes > 0) EMBER_CUDA_CHECK(cudaHostAlloc(&p, nbytes, cudaHostAllocPortable));
  std::shared_ptr<void> owner(p, [](void* q) {
    if (q && cudaFreeHost(q) != cudaSuccess) cudaGetLastError();
  });
  return wrap_storage(p, nbytes, Device::cpu(), std::move(owner));
}

}  // namespace ember::cuda_detail

namespace ember::cuda {

MemoryStats memory_stats(int device) {
  cuda_detail::DeviceMemory& m = cuda_detail::cuda_allocator().state(device);
  uint64_t reserved = 0;
  EMBER_CUDA_CHECK(cudaMemPoolGetAttribute(m.pool, cudaMemPoolAttrReservedMemCurrent, &reserved));
  return {m.allocated.load(), m.peak.load(), static_cast<size_t>(reserved), m.count.load()};
}

void reset_peak_memory_stats(int device) {
  cuda_detail::DeviceMemory& m = cuda_detail::cuda_allocator().state(device);
  m.peak.store(m.allocated.load());
}

void empty_cache(int device) {
  cuda_detail::DeviceMemory& m = cuda_detail::cuda_allocator().state(device);
  DeviceGuard guard(device);
  EMBER_CUDA_CHECK(cudaDeviceSynchronize());
  EMBER_CUDA_CHECK(cudaMemPoolTrimTo(m.pool, 0));
}

void set_memory_cap(int device, std::optional<size_t> bytes) {
  cuda_detail::cuda_allocator().state(device).cap.store(bytes.value_or(SIZE_MAX));
}

Tensor empty_pinned(const Shape& shape, DType dtype) {
  int64_t n = checked_numel(shape, "empty_pinned");
  Storage s = cuda_detail::pinned_storage(static_cast<size_t>(n) * itemsize(dtype));
  return make_tensor(std::move(s), shape, contiguous_strides(shape), 0, dtype);
}

Tensor pin_memory(const Tensor& t) {
  EMBER_CHECK(t.is_cpu(), InvalidArgument, "[pin_memory] expected a CPU tensor, got one on ", t.device());
  Tensor c = t.contiguous();
  Tensor out = empty_pinned(c.sizes(), c.dtype());
  if (c.nbytes() > 0) std::memcpy(out.data(), c.data(), c.nbytes());
  return out;
}

bool is_pinned(const Tensor& t) {
  if (!t.is_cpu() || t.storage()->data() == nullptr) return false;
  cudaPointerAttributes attr{};
  if (cudaPointerGetAttributes(&attr, t.storage()->data()) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return attr.type == cudaMemoryTypeHost;
}

}  // namespace ember::cuda
