// The public CUDA API: devices, streams, events, memory statistics, pinned memory and math
// switches. No CUDA headers here: handles are opaque, so any app can include it. In a build
// without CUDA every function throws Unsupported (device_count() returns 0).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runtime/tensor.h"

namespace ember::cuda {

/// Number of visible CUDA devices (0 without a driver, a GPU, or CUDA in this build).
int device_count();
/// True when cuda:0 exists.
inline bool is_available() { return device_count() > 0; }

struct DeviceProperties {
  std::string name;
  int major = 0, minor = 0;     // compute capability
  int multiprocessors = 0;
  size_t total_memory = 0;      // bytes
  size_t l2_cache_bytes = 0;
};
DeviceProperties properties(int device);

/// Waits for all work ember queued on the device (its streams included).
void synchronize(int device);

/// Makes `device` current for the guard's lifetime.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_;
};

/// A CUDA stream (shared handle). Every device has ember's own non-blocking stream, which ops
/// use unless a thread sets another as current.
class Stream {
 public:
  /// A new non-blocking stream on `device`.
  static Stream create(int device);
  /// The stream ops on `device` use from this thread.
  static Stream current(int device);
  /// Wraps a stream the app owns (e.g. its own renderer's); ember does not destroy it.
  static Stream wrap(void* cuda_stream, int device);

  int device() const { return device_; }
  /// The cudaStream_t.
  void* handle() const { return handle_.get(); }
  void synchronize() const;
  friend bool operator==(const Stream& a, const Stream& b) { return a.handle() == b.handle(); }

 private:
  Stream(std::shared_ptr<void> h, int device) : handle_(std::move(h)), device_(device) {}
  std::shared_ptr<void> handle_;
  int device_ = 0;
};

/// Makes `stream` current for its device on this thread for the guard's lifetime.
class StreamGuard {
 public:
  explicit StreamGuard(const Stream& stream);
  ~StreamGuard();
  StreamGuard(const StreamGuard&) = delete;
  StreamGuard& operator=(const StreamGuard&) = delete;

 private:
  std::optional<Stream> previous_;
  int device_;
};

/// A CUDA event, for ordering streams and timing.
class Event {
 public:
  explicit Event(int device, bool timing = true);
  /// Records on `stream` (default: the current stream of the event's device).
  void record(const std::optional<Stream>& stream = std::nullopt);
  /// Makes `stream` wait for this event without blocking the host.
  void wait(const Stream& stream) const;
  void synchronize() const;
  /// Milliseconds between two recorded timing events.
  static float elapsed_ms(const Event& start, const Event& end);
  void* handle() const { return handle_.get(); }

 private:
  std::shared_ptr<void> handle_;
  int device_;
};

/// A captured CUDA graph: the work a function queued on the current stream of a device, recorded
/// once and replayed with one launch. Memory allocated while capturing belongs to the graph
/// (CUDA's graph memory nodes, reused across values whose lifetimes do not overlap); what is
/// still allocated when capture ends is freed automatically when the graph is launched again.
class Graph {
 public:
  /// Runs `work` with the current stream of `device` capturing (this thread only). Throws the
  /// error `work` threw, or a Cuda error naming why capture failed (e.g. a synchronising call).
  static Graph capture(int device, const std::function<void()>& work);
  /// Launches the graph on the current stream of its device.
  void replay() const;
  int device() const { return device_; }

  /// A device-to-device copy recorded into a graph while it is captured (capture_copy), whose
  /// memory can be changed between replays (set_copy) without a launch of its own: how a
  /// replay takes its inputs from, and gives its outputs to, tensors that change every call.
  struct Copy {
    void* node = nullptr;  // the cudaGraphNode_t of the captured graph, which the Graph keeps
    size_t bytes = 0;
    void* dst = nullptr;   // the memory it copies now
    const void* src = nullptr;
  };
  /// Records a copy of `bytes` (> 0) from `src` to `dst`, device memory of `device`, on its
  /// current stream, which must be capturing. Throws Unsupported if CUDA does not report the
  /// copy's node (the capture then fails cleanly).
  static Copy capture_copy(int device, void* dst, const void* src, size_t bytes);
  /// Points a copy of this graph at other device memory (contiguous, of the copy's size) for
  /// the replays queued after this call; replays already queued keep what they had. Nothing to
  /// do where it points there already. False where CUDA refuses: the copy keeps its old memory,
  /// and the graph must not be replayed.
  bool set_copy(Copy& copy, void* dst, const void* src) const;

 private:
  Graph(std::shared_ptr<void> exec, int device) : exec_(std::move(exec)), device_(device) {}
  std::shared_ptr<void> exec_;  // the executable graph, owning the captured graph it came from
  int device_ = 0;
};

/// True while the current stream of `device` is capturing a graph on this thread.
bool is_capturing(int device);

/// Checks of values that would need the host (an index in range) cannot run while a graph is
/// captured. Inside a scope of this class they are recorded into the graph instead: each check
/// k (from 1) that fails on a replay sets `flag` (an int32 scalar on the device) to k, and the
/// checked op goes on with safe values (indices clamped into range). After a replay the owner
/// reads the flag and reports `checks()[k - 1]`. Without a scope, a check during capture is an
/// Unsupported error (the capture fails cleanly). A scope is for one thread's capture: make it
/// on the capturing thread, around the capture.
class CaptureChecks {
 public:
  explicit CaptureChecks(Tensor flag);
  ~CaptureChecks();
  CaptureChecks(const CaptureChecks&) = delete;
  CaptureChecks& operator=(const CaptureChecks&) = delete;

  /// The scope of this thread, or nullptr.
  static CaptureChecks* current();
  const Tensor& flag() const { return flag_; }
  /// Registers a check; returns the value its failure writes into the flag.
  int32_t add(std::string what);
  /// What each registered check verifies, in order.
  const std::vector<std::string>& checks() const { return checks_; }

 private:
  Tensor flag_;
  std::vector<std::string> checks_;
  CaptureChecks* previous_;
};

/// Memory held by captured graphs (not counted in MemoryStats, which counts tensors).
struct GraphMemoryStats {
  size_t used = 0;       // bytes graphs' allocations hold now
  size_t used_peak = 0;  // high-water mark of `used`
  size_t reserved = 0;   // bytes reserved from the driver for graphs
};
GraphMemoryStats graph_memory_stats(int device);

struct MemoryStats {
  size_t allocated = 0;       // bytes held by live tensors
  size_t peak_allocated = 0;  // since the last reset
  size_t reserved = 0;        // bytes the memory pool holds from the driver
  size_t allocations = 0;     // live blocks
};
MemoryStats memory_stats(int device);
void reset_peak_memory_stats(int device);
/// Returns the pool's unused memory to the driver (after waiting for the device).
void empty_cache(int device);
/// Caps the bytes live tensors may hold on the device (nullopt: no cap). Allocations past it
/// throw OutOfMemory.
void set_memory_cap(int device, std::optional<size_t> bytes);

/// float32 matrix products may use TF32 tensor cores (off by default, like PyTorch's
/// torch.backends.cuda.matmul.allow_tf32).
void set_allow_tf32(bool allow);
bool allow_tf32();

/// Kernels whose float sums depend on the order of additions across blocks pick a slower form
/// with a fixed order (like torch.use_deterministic_algorithms): on Hopper, the fused
/// attention's backward computes dQ in its own kernel instead of adding partial sums in L2.
/// Off by default; the environment variable EMBER_DETERMINISTIC=1 turns it on.
void set_deterministic(bool on);
bool deterministic();

/// Linear layers' bias and fused activation run in cuBLASLt's GEMM epilogue (ops/cuda/gemm_lt.h)
/// instead of a bias copy before cuBLAS and an activation pass after it. Off by default: on an
/// H100 it was no faster than the plain path (bench/RESULTS.md, session 15); the environment
/// variable EMBER_GEMM_EPILOGUE=1 turns it on.
void set_gemm_epilogues(bool on);
bool gemm_epilogues();

/// Single float products (a linear layer's, with or without its bias and activation) run
/// through cuBLASLt, which times up to 8 of its heuristic's algorithms on the first call of each
/// shape and keeps the fastest (ops/cuda/gemm_lt.cpp), like cudnn_benchmark for convolutions.
/// A bias and a fused activation then go in cuBLASLt's epilogue, as with gemm_epilogues().
/// Off by default: not yet measured on a GPU. Never under deterministic(), since the choice may
/// differ from run to run; a shape first met while a CUDA graph is captured keeps the
/// heuristic's first choice. The environment variable EMBER_GEMM_AUTOTUNE=1 turns it on.
void set_gemm_autotune(bool on);
bool gemm_autotune();

/// Convolutions time cuDNN's candidate algorithms on the first call of each shape and keep the
/// fastest (like torch.backends.cudnn.benchmark; off by default: the first call of each shape is
/// then slower, and the choice may differ from run to run). Off, cuDNN's heuristics choose, as
/// in PyTorch. The environment variable EMBER_CUDNN_BENCHMARK=1 turns it on.
void set_cudnn_benchmark(bool on);
bool cudnn_benchmark();

/// float32 and float64 convolutions skip cuDNN's FFT and non-fused Winograd algorithms, whose
/// rounding is further from a direct sum's (a 3×3 weight gradient: about 7e-5 of its largest
/// value against 1e-6). Off by default: PyTorch uses them, and ember then computes what PyTorch
/// does, as fast. The environment variable EMBER_CUDNN_EXACT=1 turns it on.
void set_cudnn_exact(bool on);
bool cudnn_exact();

/// A copy of a CPU tensor in page-locked memory, so transfers to the GPU can be asynchronous.
Tensor pin_memory(const Tensor& t);
/// A new uninitialised page-locked CPU tensor.
Tensor empty_pinned(const Shape& shape, DType dtype);
/// True for CPU tensors in page-locked memory.
bool is_pinned(const Tensor& t);

}  // namespace ember::cuda
