// CUDA graph capture and replay (cuda::Graph), and the memory graphs hold.
#include "runtime/cuda/handles.h"
#include "runtime/cuda/runtime.h"

namespace ember::cuda {

namespace {

// Ends a capture that failed, discarding whatever was recorded; the error that ended it stays
// the one reported.
void abandon_capture(cudaStream_t s) {
  cudaGraph_t g = nullptr;
  cudaStreamEndCapture(s, &g);
  if (g) cudaGraphDestroy(g);
  cudaGetLastError();
}

}  // namespace

Graph Graph::capture(int device, const std::function<void()>& work) {
  DeviceGuard guard(device);
  cudaStream_t s = cuda_detail::stream(device);
  // The libraries' handles are made per thread on first use, with a cudaMalloc that would
  // end the capture: a thread whose first work on this device is a capture makes them now.
  cuda_detail::cublas_handle(device);
  cuda_detail::cublaslt_handle(device);
  cuda_detail::cudnn_handle(device);
  // Thread-local: other threads may go on queueing work on their own streams meanwhile.
  EMBER_CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  try {
    work();
  } catch (...) {
    abandon_capture(s);
    throw;
  }
  cudaGraph_t g = nullptr;
  const cudaError_t ended = cudaStreamEndCapture(s, &g);
  if (ended != cudaSuccess) {
    if (g) cudaGraphDestroy(g);
    cudaGetLastError();
    throw_error(ErrorCode::Cuda, str_cat("[cuda graph] capture on cuda:", device, " failed: ",
                                         cudaGetErrorString(ended),
                                         " (the captured work used a call that cannot be captured, such as a "
                                         "synchronisation or a copy from pageable host memory)"));
  }
  cudaGraphExec_t exec = nullptr;
  const cudaError_t made = cudaGraphInstantiateWithFlags(&exec, g, cudaGraphInstantiateFlagAutoFreeOnLaunch);
  if (made != cudaSuccess) cudaGraphDestroy(g);
  EMBER_CUDA_CHECK(made);
  // The captured graph stays as long as its executable one: set_copy names its nodes.
  std::shared_ptr<void> owner(exec, [g](void* e) {
    if (cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(e)) != cudaSuccess) cudaGetLastError();
    if (cudaGraphDestroy(g) != cudaSuccess) cudaGetLastError();
  });
  // Uploaded now, so that the first launch is not slowed by it.
  EMBER_CUDA_CHECK(cudaGraphUpload(exec, s));
  return Graph(std::move(owner), device);
}

void Graph::replay() const {
  DeviceGuard guard(device_);
  EMBER_CUDA_CHECK(cudaGraphLaunch(static_cast<cudaGraphExec_t>(exec_.get()), cuda_detail::stream(device_)));
}

Graph::Copy Graph::capture_copy(int device, void* dst, const void* src, size_t bytes) {
  DeviceGuard guard(device);
  cudaStream_t s = cuda_detail::stream(device);
  EMBER_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, s));
  // The node just recorded is the one the stream's next node would depend on.
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  const cudaGraphNode_t* deps = nullptr;
  size_t count = 0;
#if CUDART_VERSION >= 12030
  EMBER_CUDA_CHECK(cudaStreamGetCaptureInfo(s, &status, nullptr, nullptr, &deps, nullptr, &count));
#else
  EMBER_CUDA_CHECK(cudaStreamGetCaptureInfo_v2(s, &status, nullptr, nullptr, &deps, &count));
#endif
  cudaGraphNodeType type = cudaGraphNodeTypeEmpty;
  const bool found = status == cudaStreamCaptureStatusActive && count == 1 &&
                     cudaGraphNodeGetType(deps[0], &type) == cudaSuccess && type == cudaGraphNodeTypeMemcpy;
  EMBER_CHECK(found, Unsupported, "[cuda graph] the stream being captured on cuda:", device,
              " did not report the copy just recorded (", count, " dependencies)");
  return {static_cast<void*>(deps[0]), bytes, dst, src};
}

bool Graph::set_copy(Copy& copy, void* dst, const void* src) const {
  if (dst == copy.dst && src == copy.src) return true;
  DeviceGuard guard(device_);
  const cudaError_t set = cudaGraphExecMemcpyNodeSetParams1D(static_cast<cudaGraphExec_t>(exec_.get()),
                                                             static_cast<cudaGraphNode_t>(copy.node), dst, src,
                                                             copy.bytes, cudaMemcpyDeviceToDevice);
  if (set != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  copy.dst = dst;
  copy.src = src;
  return true;
}

bool is_capturing(int device) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  EMBER_CUDA_CHECK(cudaStreamIsCapturing(cuda_detail::stream(device), &status));
  return status != cudaStreamCaptureStatusNone;
}

namespace {
thread_local CaptureChecks* t_checks = nullptr;
}  // namespace

CaptureChecks::CaptureChecks(Tensor flag) : flag_(std::move(flag)), previous_(t_checks) { t_checks = this; }
CaptureChecks::~CaptureChecks() { t_checks = previous_; }
CaptureChecks* CaptureChecks::current() { return t_checks; }

int32_t CaptureChecks::add(std::string what) {
  checks_.push_back(std::move(what));
  return static_cast<int32_t>(checks_.size());
}


GraphMemoryStats graph_memory_stats(int device) {
  DeviceGuard guard(device);
  GraphMemoryStats s;
  uint64_t v = 0;
  EMBER_CUDA_CHECK(cudaDeviceGetGraphMemAttribute(device, cudaGraphMemAttrUsedMemCurrent, &v));
  s.used = static_cast<size_t>(v);
  EMBER_CUDA_CHECK(cudaDeviceGetGraphMemAttribute(device, cudaGraphMemAttrUsedMemHigh, &v));
  s.used_peak = static_cast<size_t>(v);
  EMBER_CUDA_CHECK(cudaDeviceGetGraphMemAttribute(device, cudaGraphMemAttrReservedMemCurrent, &v));
  s.reserved = static_cast<size_t>(v);
  return s;
}

}  // namespace ember::cuda
