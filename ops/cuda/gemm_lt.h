// One GEMM through cuBLASLt with a fused epilogue: D = act(alpha · op(A) · op(B) + bias), the
// bias a vector over D's rows, act none, ReLU or GELU (tanh approximation) — what a linear
// layer with its bias and activation needs in one kernel instead of a bias copy, a GEMM and an
// activation pass. Column-major, as cuBLAS; matmul.cu maps row-major products onto it.
#pragma once

#include <cstdint>

#include <cublasLt.h>

namespace ember::cuda_ops {

struct LtGemm {
  int device = 0;
  cudaDataType_t type = CUDA_R_32F;  // of A, B, D and the bias
  cublasComputeType_t compute = CUBLAS_COMPUTE_32F;
  cublasOperation_t op_a = CUBLAS_OP_N, op_b = CUBLAS_OP_N;
  int64_t m = 0, n = 0, k = 0;  // D is m × n
  const void* a = nullptr;      // m × k after op_a
  int64_t lda = 0;
  const void* b = nullptr;      // k × n after op_b
  int64_t ldb = 0;
  void* d = nullptr;            // leading dimension m
  const void* bias = nullptr;   // m values, or null
  cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_DEFAULT;
  float alpha = 1;
};

/// Queues the product on the device's stream. Returns false, having queued nothing, when
/// cuBLASLt offers no algorithm for it (the caller takes the plain cuBLAS path). Each shape's
/// algorithm is chosen once per thread by cuBLASLt's heuristic and cached.
bool gemm_lt(const LtGemm& g);

}  // namespace ember::cuda_ops
