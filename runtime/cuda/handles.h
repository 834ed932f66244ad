// cuBLAS, cuBLASLt and cuDNN handles: one of each per device and thread (a handle is not safe to
// share across threads that set different streams), created on first use, destroyed with the
// thread. Each getter binds the handle to the thread's current stream for that device.
#pragma once

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cudnn.h>

namespace ember::cuda_detail {

cublasHandle_t cublas_handle(int device);
cublasLtHandle_t cublaslt_handle(int device);
cudnnHandle_t cudnn_handle(int device);

[[noreturn]] void throw_cudnn(cudnnStatus_t status, const char* call, const char* file, int line);

}  // namespace ember::cuda_detail

#define EMBER_CUDNN_CHECK(call)                                                                  \
  do {                                                                                           \
    cudnnStatus_t ember_status_ = (call);                                                        \
    if (ember_status_ != CUDNN_STATUS_SUCCESS) [[unlikely]]                                      \
      ::ember::cuda_detail::throw_cudnn(ember_status_, #call, __FILE__, __LINE__);               \
  } while (0)
