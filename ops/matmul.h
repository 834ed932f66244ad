// Matrix products: mm, bmm, matmul (PyTorch's broadcasting rules), addmm, linear. All run on
// one batched GEMM op with arbitrary strides (transposed inputs are not copied).
#pragma once

#include <optional>
#include <string_view>

#include "ops/op.h"

namespace ember {

/// What a GEMM applies to its result before storing it: a linear layer's activation, fused by
/// the inference passes (graph/passes.h) and, on CUDA, run in cuBLASLt's epilogue.
enum class GemmActivation : uint8_t { kNone, kRelu, kGeluTanh };
/// "none", "relu" or "gelu_tanh"; anything else is InvalidArgument naming `op`.
GemmActivation gemm_activation_from(std::string_view name, const char* op);
const char* gemm_activation_name(GemmActivation a);
/// Applies `a` to `out` in place (the GEMM kernels' path when no fused epilogue is used).
void apply_gemm_activation(const Tensor& out, GemmActivation a);

/// out[i] = act(beta * bias[i] + alpha * a[i] @ b[i]) over a batch: a [B, n, k], b [B, k, m]
/// (either may have batch stride 0), optional bias broadcast to [B, n, m]; out [B, n, m].
struct GemmOp final : Op {
  double alpha = 1, beta = 0;
  bool has_bias = false;
  GemmActivation activation = GemmActivation::kNone;
  const char* name() const override { return "gemm"; }
  EMBER_OP_FORWARDS
  EMBER_OP_BACKWARD

 private:
  void forward_plain(const TensorList& inputs, const Tensor& out);  // CUDA without an epilogue
};

/// [n, k] @ [k, m]
Tensor mm(const Tensor& a, const Tensor& b);
/// [B, n, k] @ [B, k, m]
Tensor bmm(const Tensor& a, const Tensor& b);
/// torch.matmul: dot, matrix-vector, matrix-matrix and broadcast batched products.
Tensor matmul(const Tensor& a, const Tensor& b);
/// beta * bias + alpha * (a @ b), a and b 2-D, bias broadcastable to the product.
Tensor addmm(const Tensor& bias, const Tensor& a, const Tensor& b, double beta = 1, double alpha = 1);
/// act(x @ weight^T + bias); x [..., in], weight [out, in], bias [out]. With an activation it
/// is one GEMM (cuBLASLt's epilogue on CUDA); relu there may turn a NaN into 0, where relu()
/// keeps it.
Tensor linear(const Tensor& x, const Tensor& weight, const std::optional<Tensor>& bias = std::nullopt,
              GemmActivation activation = GemmActivation::kNone);

}  // namespace ember
