// Fused scaled-dot-product attention on CUDA (ops/cuda/flash_attention.cu for half types, its
// forward on Hopper in ops/cuda/flash_attention_sm90.cu; ops/cuda/attention_float.cu for float32
// inference): the scores and probabilities of a head are never stored, so memory grows with
// L + S rather than L·S.
// nn::scaled_dot_product_attention takes it where it applies and otherwise (the CPU, float64,
// float32 where an input needs a gradient, masks other than causal, dropout, other head dims)
// runs the math path, which is also the reference the fused kernels are tested against.
#pragma once

#include <string>

#include "ops/op.h"

namespace ember {

/// Not in the op registry: it is how scaled_dot_product_attention (the op models name) runs on
/// CUDA for half types, not an op of its own.
/// Inputs q [B, H, L, D], k and v [B, Hkv, S, D] (H a multiple of Hkv; query head h reads
/// key/value head h / (H / Hkv)), each with a contiguous last dim. Outputs: the attention
/// [B, H, L, D] and the float32 log-sum-exp of each row's scaled scores [B, H, L].
struct FlashAttentionOp final : Op {
  bool causal;   // query i sees keys j <= i (PyTorch's is_causal: the top-left triangle)
  double scale;  // applied to q·kᵀ
  FlashAttentionOp(bool c, double s) : causal(c), scale(s) {}
  const char* name() const override { return "flash_attention"; }
  bool saves_outputs() const override { return true; }
  EMBER_OP_FORWARDS
  EMBER_OP_BACKWARD
};

/// Its gradients in three kernels. Inputs: q, k, v, the output, the log-sum-exp and the
/// output's gradient (contiguous). Outputs: dq, dk, dv (contiguous). Not differentiable itself:
/// under create_graph, FlashAttentionOp's backward uses public ops instead.
struct FlashAttentionBackwardOp final : Op {
  bool causal;
  double scale;
  FlashAttentionBackwardOp(bool c, double s) : causal(c), scale(s) {}
  const char* name() const override { return "flash_attention_backward"; }
  EMBER_OP_FORWARDS
};

/// The float32 form, for inference: inputs and output as FlashAttentionOp's, no log-sum-exp and
/// no backward. Float32 training keeps the math path, whose backward reuses the probabilities it
/// stored instead of recomputing them.
struct FlashAttentionFloatOp final : Op {
  bool causal;
  double scale;
  FlashAttentionFloatOp(bool c, double s) : causal(c), scale(s) {}
  const char* name() const override { return "flash_attention_float32"; }
  EMBER_OP_FORWARDS
};

/// Why the fused kernels cannot take these inputs, or an empty string when they can.
/// `needs_grad`: a gradient will flow back to q, k or v (the float32 kernel has no backward).
std::string flash_attention_refusal(const Tensor& q, const Tensor& k, const Tensor& v, bool has_mask,
                                    double dropout_p, bool needs_grad);

/// Whether FlashAttentionOp's forward runs Hopper's sm_90a kernel on these inputs (an empty
/// string) or, for the reason returned, the mma.sync kernel (ops/cuda/flash_attention_sm90.h).
/// For tests and diagnostics.
std::string flash_attention_sm90_refusal(const Tensor& q, const Tensor& k, const Tensor& v);

/// Runs FlashAttentionOp, or FlashAttentionFloatOp for float32 (the caller has checked
/// flash_attention_refusal).
Tensor flash_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal, double scale);

}  // namespace ember
