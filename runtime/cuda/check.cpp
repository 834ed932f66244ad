#include "runtime/cuda/check.h"

#include <cstring>

namespace ember::cuda_detail {

namespace {
const char* base_name(const char* path) {
  const char* slash = std::strrchr(path, '/');
  return slash ? slash + 1 : path;
}
}  // namespace

void throw_cuda(cudaError_t err, const char* call, const char* file, int line) {
  cudaGetLastError();  // clear a non-sticky error so the process stays usable
  ErrorCode code = err == cudaErrorMemoryAllocation ? ErrorCode::OutOfMemory : ErrorCode::Cuda;
  throw Error(code, str_cat("[cuda] ", call, " failed: ", cudaGetErrorName(err), " (", cudaGetErrorString(err),
                            ") at ", base_name(file), ":", line));
}

void throw_cublas(cublasStatus_t status, const char* call, const char* file, int line) {
  throw Error(ErrorCode::Cuda, str_cat("[cublas] ", call, " failed: ", cublasGetStatusName(status), " (",
                                       cublasGetStatusString(status), ") at ", base_name(file), ":", line));
}

}  // namespace ember::cuda_detail
