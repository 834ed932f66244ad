// CUDA GEMM. Float types go to cuBLAS as one strided-batched call: row-major products are
// computed as their column-major transposes (C^T = B^T A^T), each operand passed as-is with the
// transpose flag its strides imply, so transposed and broadcast (batch stride 0) inputs are
// not copied. float32 uses TF32 tensor cores only when allowed (cuda::set_allow_tf32); half
// types accumulate in float32. Integer types (which cuBLAS lacks) use a simple kernel that
// accumulates in wrapping 64-bit arithmetic, as the CPU's results wrap. A single product with a
// bias over its output features (a linear layer) or a fused activation goes to cuBLASLt with
// the bias and activation in its epilogue (gemm_lt.h), as PyTorch's addmm does: no bias copy,
// no activation pass.
#include "ops/binary.h"
#include "ops/copy.h"
#include "ops/cuda/gemm_lt.h"
#include "ops/cuda/loops.cuh"
#include "ops/matmul.h"
#include "runtime/cuda/handles.h"

namespace ember {

namespace {

bool row_major_ok(int64_t rows, int64_t cols, int64_t s0, int64_t s1) {
  return (cols <= 1 || s1 == 1) && (rows <= 1 || s0 >= cols);
}
bool col_major_ok(int64_t rows, int64_t cols, int64_t s0, int64_t s1) {
  return (rows <= 1 || s0 == 1) && (cols <= 1 || s1 >= rows);
}

// How cuBLAS sees the transpose of a row-major rows x cols operand: column-major storage with
// a transpose flag and a leading dimension.
struct BlasOperand {
  cublasOperation_t op;
  int64_t ld;
};

BlasOperand transposed_view(int64_t rows, int64_t cols, int64_t s0, int64_t s1) {
  if (row_major_ok(rows, cols, s0, s1)) return {CUBLAS_OP_N, std::max<int64_t>(1, rows <= 1 ? cols : s0)};
  return {CUBLAS_OP_T, std::max<int64_t>(1, cols <= 1 ? rows : s1)};
}

Tensor gemm_ready(const Tensor& t) {
  const int64_t r = t.sizes()[1], c = t.sizes()[2], s0 = t.strides()[1], s1 = t.strides()[2];
  return row_major_ok(r, c, s0, s1) || col_major_ok(r, c, s0, s1) ? t : t.contiguous();
}

template <typename T>
__global__ void int_gemm_kernel(const T* a, const T* b, T* c, int64_t B, int64_t n, int64_t k, int64_t m,
                                int64_t sa0, int64_t sa1, int64_t sa2, int64_t sb0, int64_t sb1, int64_t sb2,
                                int64_t alpha, int64_t beta, bool has_bias) {
  const int64_t total = B * n * m;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t bi = idx / (n * m), i = (idx / m) % n, j = idx % m;
    uint64_t acc = 0;
    for (int64_t p = 0; p < k; ++p)
      acc += static_cast<uint64_t>(static_cast<int64_t>(a[bi * sa0 + i * sa1 + p * sa2])) *
             static_cast<uint64_t>(static_cast<int64_t>(b[bi * sb0 + p * sb1 + j * sb2]));
    uint64_t r = acc * static_cast<uint64_t>(alpha);
    if (has_bias) r += static_cast<uint64_t>(static_cast<int64_t>(c[idx])) * static_cast<uint64_t>(beta);
    c[idx] = static_cast<T>(static_cast<int64_t>(r));
  }
}

cudaDataType_t blas_type(DType dt) {
  return dt == kFloat32 ? CUDA_R_32F : dt == kFloat64 ? CUDA_R_64F : dt == kFloat16 ? CUDA_R_16F : CUDA_R_16BF;
}
cublasComputeType_t blas_compute(DType dt) {
  return dt == kFloat64 ? CUBLAS_COMPUTE_64F
         : (dt == kFloat32 && cuda::allow_tf32()) ? CUBLAS_COMPUTE_32F_FAST_TF32
                                                   : CUBLAS_COMPUTE_32F;
}

// The product through cuBLASLt with its bias and activation in the epilogue, when it is one
// half or float32 product whose bias (if any) is one value per output column. False when it
// is not, or cuBLASLt has no algorithm for it.
bool try_epilogue(const GemmOp& op, const TensorList& inputs, const Tensor& out) {
  // cuda::set_gemm_epilogues (EMBER_GEMM_EPILOGUE); with cuda::set_gemm_autotune
  // (EMBER_GEMM_AUTOTUNE) every single float product goes here, to have its algorithm timed.
  const bool autotune = cuda::gemm_autotune();
  if (!cuda::gemm_epilogues() && !autotune) return false;
  const Tensor& a = inputs[0];
  const Tensor& b = inputs[1];
  const DType dt = a.dtype();
  if (a.sizes()[0] != 1 || !(dt == kFloat32 || dt == kFloat16 || dt == kBFloat16)) return false;
  const int64_t n = a.sizes()[1], k = a.sizes()[2], m = b.sizes()[2];
  const Tensor* bias = op.has_bias ? &inputs[2] : nullptr;
  if (bias && !(op.beta == 1 && (m == 1 || bias->strides()[2] == 1) && (n == 1 || bias->strides()[1] == 0))) return false;
  if (!bias && op.activation == GemmActivation::kNone && !autotune) return false;  // plain cuBLAS does that
  if (k == 0 || std::max({m, n, k}) > INT32_MAX) return false;
  const Tensor ar = gemm_ready(a), br = gemm_ready(b);
  const BlasOperand bt = transposed_view(k, m, br.strides()[1], br.strides()[2]);
  const BlasOperand at = transposed_view(n, k, ar.strides()[1], ar.strides()[2]);
  const bool relu = op.activation == GemmActivation::kRelu, gelu = op.activation == GemmActivation::kGeluTanh;
  cuda_ops::LtGemm g;
  g.device = out.device().index;
  g.type = blas_type(dt);
  g.compute = blas_compute(dt);
  g.op_a = bt.op;
  g.op_b = at.op;
  g.m = m, g.n = n, g.k = k;
  g.a = br.data(), g.lda = bt.ld;
  g.b = ar.data(), g.ldb = at.ld;
  g.d = out.data();
  g.bias = bias ? bias->data() : nullptr;
  g.epilogue = bias ? (relu ? CUBLASLT_EPILOGUE_RELU_BIAS : gelu ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_BIAS)
                    : (relu ? CUBLASLT_EPILOGUE_RELU : gelu ? CUBLASLT_EPILOGUE_GELU : CUBLASLT_EPILOGUE_DEFAULT);
  g.alpha = static_cast<float>(op.alpha);
  cuda::DeviceGuard guard(g.device);
  return cuda_ops::gemm_lt(g);
}

}  // namespace

void GemmOp::forward_cuda(const TensorList& inputs, const TensorList& outputs) {
  const Tensor& out = outputs[0];
  if (out.numel() == 0) return;
  if (try_epilogue(*this, inputs, out)) return;
  forward_plain(inputs, out);
  apply_gemm_activation(out, activation);
}

// cuBLAS (or the integer kernel) with the bias copied into the output first.
void GemmOp::forward_plain(const TensorList& inputs, const Tensor& out) {
  if (has_bias) copy_(out, inputs[2]);
  const Tensor a = gemm_ready(inputs[0]);
  const Tensor b = gemm_ready(inputs[1]);
  const int64_t B = a.sizes()[0], n = a.sizes()[1], k = a.sizes()[2], m = b.sizes()[2];
  const int device = out.device().index;
  cuda::DeviceGuard guard(device);
  const DType dt = a.dtype();

  if (!is_floating(dt)) {
    cuda_ops::dispatch<kIntegralSet>(dt, "matmul", [&]<typename T>() {
      int_gemm_kernel<T><<<cuda_ops::grid_for(out.numel(), device), cuda_ops::kBlock, 0, cuda_detail::stream(device)>>>(
          a.data_ptr<T>(), b.data_ptr<T>(), out.data_ptr<T>(), B, n, k, m, a.strides()[0], a.strides()[1],
          a.strides()[2], b.strides()[0], b.strides()[1], b.strides()[2], static_cast<int64_t>(alpha),
          static_cast<int64_t>(beta), has_bias);
    });
    EMBER_CUDA_CHECK_LAUNCH();
    return;
  }

  if (k == 0) {  // cuBLAS would leave C untouched: the product is zero
    if (has_bias) mul_(out, beta);
    else zero_(out);
    return;
  }
  const cudaDataType_t type = blas_type(dt);
  const cublasComputeType_t compute = blas_compute(dt);
  // C^T (m x n) = B^T (m x k) * A^T (k x n), all column-major.
  BlasOperand bt = transposed_view(k, m, b.strides()[1], b.strides()[2]);
  BlasOperand at = transposed_view(n, k, a.strides()[1], a.strides()[2]);
  for (int64_t v : {m, n, k, bt.ld, at.ld, B})
    EMBER_CHECK(v <= INT32_MAX, Unsupported, "[matmul] dimension ", v, " exceeds cuBLAS's 32-bit limit");
  const double alpha_d = alpha, beta_d = has_bias ? beta : 0.0;
  const float alpha_f = static_cast<float>(alpha), beta_f = static_cast<float>(beta_d);
  const void* alpha_p = dt == kFloat64 ? static_cast<const void*>(&alpha_d) : &alpha_f;
  const void* beta_p = dt == kFloat64 ? static_cast<const void*>(&beta_d) : &beta_f;
  cublasHandle_t h = cuda_detail::cublas_handle(device);
  EMBER_CUBLAS_CHECK(cublasSetPointerMode(h, CUBLAS_POINTER_MODE_HOST));
  if (B == 1) {
    EMBER_CUBLAS_CHECK(cublasGemmEx(h, bt.op, at.op, static_cast<int>(m), static_cast<int>(n), static_cast<int>(k),
                                    alpha_p, b.data(), type, static_cast<int>(bt.ld), a.data(), type,
                                    static_cast<int>(at.ld), beta_p, out.data(), type, static_cast<int>(m), compute,
                                    CUBLAS_GEMM_DEFAULT));
  } else {
    EMBER_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
        h, bt.op, at.op, static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), alpha_p, b.data(), type,
        static_cast<int>(bt.ld), b.strides()[0], a.data(), type, static_cast<int>(at.ld), a.strides()[0], beta_p,
        out.data(), type, static_cast<int>(m), n * m, static_cast<int>(B), compute, CUBLAS_GEMM_DEFAULT));
  }
}

}  // namespace ember
