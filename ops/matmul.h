// Matrix products: mm, bmm, matmul (PyTorch's broadcasting rules), addmm, linear. All run on
// one batched GEMM op with arbitrary strides (transposed inputs are not copied).
#pragma once

#include <optional>

#include "ops/op.h"

namespace ember {

/// out[i] = beta * bias[i] + alpha * a[i] @ b[i] over a batch: a [B, n, k], b [B, k, m]
/// (either may have batch stride 0), optional bias broadcast to [B, n, m]; out [B, n, m].
struct GemmOp final : Op {
  double alpha = 1, beta = 0;
  bool has_bias = false;
  const char* name() const override { return "gemm"; }
  EMBER_OP_FORWARDS
  EMBER_OP_BACKWARD
};

/// [n, k] @ [k, m]
Tensor mm(const Tensor& a, const Tensor& b);
/// [B, n, k] @ [B, k, m]
Tensor bmm(const Tensor& a, const Tensor& b);
/// torch.matmul: dot, matrix-vector, matrix-matrix and broadcast batched products.
Tensor matmul(const Tensor& a, const Tensor& b);
/// beta * bias + alpha * (a @ b), a and b 2-D, bias broadcastable to the product.
Tensor addmm(const Tensor& bias, const Tensor& a, const Tensor& b, double beta = 1, double alpha = 1);
/// x @ weight^T + bias; x [..., in], weight [out, in], bias [out].
Tensor linear(const Tensor& x, const Tensor& weight, const std::optional<Tensor>& bias = std::nullopt);

}  // namespace ember
