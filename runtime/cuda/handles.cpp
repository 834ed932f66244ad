#include "runtime/cuda/handles.h"

#include <unordered_map>

#include "runtime/cuda/runtime.h"

namespace ember::cuda_detail {

namespace {

// Owns a handle; destroys it with its thread (errors at process exit are ignored).
template <typename H, auto Destroy>
struct Owned {
  H h = nullptr;
  Owned() = default;
  explicit Owned(H handle) : h(handle) {}
  Owned(Owned&& o) noexcept : h(o.h) { o.h = nullptr; }
  Owned& operator=(Owned&&) = delete;
  Owned(const Owned&) = delete;
  ~Owned() {
    if (h) Destroy(h);
  }
};

}  // namespace

cublasHandle_t cublas_handle(int device) {
  thread_local std::unordered_map<int, Owned<cublasHandle_t, cublasDestroy>> handles;
  auto it = handles.find(device);
  if (it == handles.end()) {
    cuda::DeviceGuard guard(device);
    cublasHandle_t h = nullptr;
    EMBER_CUBLAS_CHECK(cublasCreate(&h));
    it = handles.emplace(device, Owned<cublasHandle_t, cublasDestroy>(h)).first;
  }
  EMBER_CUBLAS_CHECK(cublasSetStream(it->second.h, stream(device)));
  return it->second.h;
}

cublasLtHandle_t cublaslt_handle(int device) {
  thread_local std::unordered_map<int, Owned<cublasLtHandle_t, cublasLtDestroy>> handles;
  auto it = handles.find(device);
  if (it == handles.end()) {
    cuda::DeviceGuard guard(device);
    cublasLtHandle_t h = nullptr;
    EMBER_CUBLAS_CHECK(cublasLtCreate(&h));
    it = handles.emplace(device, Owned<cublasLtHandle_t, cublasLtDestroy>(h)).first;
  }
  return it->second.h;
}

cudnnHandle_t cudnn_handle(int device) {
  thread_local std::unordered_map<int, Owned<cudnnHandle_t, cudnnDestroy>> handles;
  auto it = handles.find(device);
  if (it == handles.end()) {
    cuda::DeviceGuard guard(device);
    cudnnHandle_t h = nullptr;
    EMBER_CUDNN_CHECK(cudnnCreate(&h));
    it = handles.emplace(device, Owned<cudnnHandle_t, cudnnDestroy>(h)).first;
  }
  EMBER_CUDNN_CHECK(cudnnSetStream(it->second.h, stream(device)));
  return it->second.h;
}

void throw_cudnn(cudnnStatus_t status, const char* call, const char* file, int line) {
  throw Error(ErrorCode::Cuda, str_cat("[cudnn] ", call, " failed: ", cudnnGetErrorString(status), " at ", file, ":", line));
}

}  // namespace ember::cuda_detail
