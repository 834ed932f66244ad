// Check macros for every CUDA, cuBLAS and cuDNN call: a failure throws ember::Error naming the
// call, the error and where it happened.
#pragma once

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "runtime/error.h"

namespace ember::cuda_detail {

[[noreturn]] void throw_cuda(cudaError_t err, const char* call, const char* file, int line);
[[noreturn]] void throw_cublas(cublasStatus_t status, const char* call, const char* file, int line);

}  // namespace ember::cuda_detail

#define EMBER_CUDA_CHECK(call)                                                                   \
  do {                                                                                           \
    cudaError_t ember_err_ = (call);                                                             \
    if (ember_err_ != cudaSuccess) [[unlikely]]                                                  \
      ::ember::cuda_detail::throw_cuda(ember_err_, #call, __FILE__, __LINE__);                   \
  } while (0)

/// Checks the launch of the kernel just queued.
#define EMBER_CUDA_CHECK_LAUNCH() EMBER_CUDA_CHECK(cudaGetLastError())

#define EMBER_CUBLAS_CHECK(call)                                                                 \
  do {                                                                                           \
    cublasStatus_t ember_status_ = (call);                                                       \
    if (ember_status_ != CUBLAS_STATUS_SUCCESS) [[unlikely]]                                     \
      ::ember::cuda_detail::throw_cublas(ember_status_, #call, __FILE__, __LINE__);              \
  } while (0)
