// Devices, streams and events.
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "runtime/cuda/runtime.h"

namespace ember::cuda {

int device_count() {
  static const int count = [] {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      cudaGetLastError();  // no driver or no GPU: zero devices, not an error
      return 0;
    }
    return n;
  }();
  return count;
}

namespace {

void check_index(int device, const char* op) {
  EMBER_CHECK(device >= 0 && device < device_count(), Cuda, "[", op, "] no CUDA device cuda:", device, " (",
              device_count(), " device", device_count() == 1 ? "" : "s", " visible)");
}

}  // namespace

DeviceProperties properties(int device) {
  const cudaDeviceProp& p = cuda_detail::device_prop(device);
  return {p.name, p.major, p.minor, p.multiProcessorCount, p.totalGlobalMem, static_cast<size_t>(p.l2CacheSize)};
}

void synchronize(int device) {
  DeviceGuard guard(device);
  EMBER_CUDA_CHECK(cudaDeviceSynchronize());
}

DeviceGuard::DeviceGuard(int device) {
  check_index(device, "device");
  EMBER_CUDA_CHECK(cudaGetDevice(&previous_));
  if (previous_ != device) EMBER_CUDA_CHECK(cudaSetDevice(device));
}

DeviceGuard::~DeviceGuard() {
  int now = -1;
  if (cudaGetDevice(&now) == cudaSuccess && now != previous_) cudaSetDevice(previous_);
}

// ---- streams -------------------------------------------------------------------------------

namespace {

std::shared_ptr<void> owned_stream(int device) {
  DeviceGuard guard(device);
  cudaStream_t s = nullptr;
  EMBER_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  return std::shared_ptr<void>(s, [](void* p) { cudaStreamDestroy(static_cast<cudaStream_t>(p)); });
}

// ember's own stream per device, created on first use and kept for the process.
const Stream& default_stream(int device) {
  static std::mutex mutex;
  static std::vector<std::atomic<Stream*>> streams(device_count());
  check_index(device, "stream");
  Stream* s = streams[device].load(std::memory_order_acquire);
  if (s) return *s;
  std::lock_guard<std::mutex> lock(mutex);
  s = streams[device].load(std::memory_order_relaxed);
  if (!s) {
    s = new Stream(Stream::create(device));  // kept for the process: kernels may run at exit
    streams[device].store(s, std::memory_order_release);
  }
  return *s;
}

thread_local std::unordered_map<int, Stream> t_current;

}  // namespace

Stream Stream::create(int device) { return Stream(owned_stream(device), device); }

Stream Stream::current(int device) {
  auto it = t_current.find(device);
  return it != t_current.end() ? it->second : default_stream(device);
}

Stream Stream::wrap(void* cuda_stream, int device) {
  check_index(device, "stream");
  return Stream(std::shared_ptr<void>(cuda_stream, [](void*) {}), device);
}

void Stream::synchronize() const { EMBER_CUDA_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(handle()))); }

StreamGuard::StreamGuard(const Stream& stream) : device_(stream.device()) {
  auto it = t_current.find(device_);
  if (it != t_current.end()) previous_ = it->second;
  t_current.insert_or_assign(device_, stream);
}

StreamGuard::~StreamGuard() {
  if (previous_) t_current.insert_or_assign(device_, *previous_);
  else t_current.erase(device_);
}

// ---- events --------------------------------------------------------------------------------

Event::Event(int device, bool timing) : device_(device) {
  DeviceGuard guard(device);
  cudaEvent_t e = nullptr;
  EMBER_CUDA_CHECK(cudaEventCreateWithFlags(&e, timing ? cudaEventDefault : cudaEventDisableTiming));
  handle_ = std::shared_ptr<void>(e, [](void* p) { cudaEventDestroy(static_cast<cudaEvent_t>(p)); });
}

void Event::record(const std::optional<Stream>& stream) {
  Stream s = stream ? *stream : Stream::current(device_);
  EMBER_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(handle()), static_cast<cudaStream_t>(s.handle())));
}

void Event::wait(const Stream& stream) const {
  EMBER_CUDA_CHECK(cudaStreamWaitEvent(static_cast<cudaStream_t>(stream.handle()), static_cast<cudaEvent_t>(handle()), 0));
}

void Event::synchronize() const { EMBER_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(handle()))); }

float Event::elapsed_ms(const Event& start, const Event& end) {
  float ms = 0;
  EMBER_CUDA_CHECK(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(start.handle()), static_cast<cudaEvent_t>(end.handle())));
  return ms;
}

}  // namespace ember::cuda

namespace ember::cuda_detail {

// The hot path of every launch: no lock and no shared_ptr copy unless this thread has set a
// stream of its own.
cudaStream_t stream(int device) {
  if (!cuda::t_current.empty()) {
    auto it = cuda::t_current.find(device);
    if (it != cuda::t_current.end()) return static_cast<cudaStream_t>(it->second.handle());
  }
  return static_cast<cudaStream_t>(cuda::default_stream(device).handle());
}

// Properties of every device, read once (a launch asks for the multiprocessor count).
const cudaDeviceProp& device_prop(int device) {
  static const std::vector<cudaDeviceProp> props = [] {
    std::vector<cudaDeviceProp> p(cuda::device_count());
    for (int d = 0; d < static_cast<int>(p.size()); ++d) EMBER_CUDA_CHECK(cudaGetDeviceProperties(&p[d], d));
    return p;
  }();
  EMBER_CHECK(device >= 0 && device < static_cast<int>(props.size()), Cuda, "[device] no CUDA device cuda:", device);
  return props[device];
}

}  // namespace ember::cuda_detail

namespace ember::cuda {

namespace {
std::atomic<bool> g_allow_tf32{false};
}

void set_allow_tf32(bool allow) { g_allow_tf32.store(allow); }
bool allow_tf32() { return g_allow_tf32.load(); }

namespace {
/// A switch that starts as the environment variable `name` says ("1": on).
struct EnvFlag {
  explicit EnvFlag(const char* name) {
    const char* v = std::getenv(name);
    on.store(v != nullptr && std::string(v) == "1");
  }
  std::atomic<bool> on{false};
};
EnvFlag& cudnn_benchmark_flag() {
  static EnvFlag flag("EMBER_CUDNN_BENCHMARK");
  return flag;
}
EnvFlag& cudnn_exact_flag() {
  static EnvFlag flag("EMBER_CUDNN_EXACT");
  return flag;
}
EnvFlag& deterministic_flag() {
  static EnvFlag flag("EMBER_DETERMINISTIC");
  return flag;
}
EnvFlag& gemm_epilogue_flag() {
  static EnvFlag flag("EMBER_GEMM_EPILOGUE");
  return flag;
}
EnvFlag& gemm_autotune_flag() {
  static EnvFlag flag("EMBER_GEMM_AUTOTUNE");
  return flag;
}
}  // namespace

void set_cudnn_benchmark(bool on) { cudnn_benchmark_flag().on.store(on); }
bool cudnn_benchmark() { return cudnn_benchmark_flag().on.load(); }
void set_cudnn_exact(bool on) { cudnn_exact_flag().on.store(on); }
bool cudnn_exact() { return cudnn_exact_flag().on.load(); }
void set_deterministic(bool on) { deterministic_flag().on.store(on); }
bool deterministic() { return deterministic_flag().on.load(); }
void set_gemm_epilogues(bool on) { gemm_epilogue_flag().on.store(on); }
bool gemm_epilogues() { return gemm_epilogue_flag().on.load(); }
void set_gemm_autotune(bool on) { gemm_autotune_flag().on.store(on); }
bool gemm_autotune() { return gemm_autotune_flag().on.load(); }

}  // namespace ember::cuda
