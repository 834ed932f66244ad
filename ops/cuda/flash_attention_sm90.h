// The fused attention kernels for Hopper (sm_90a): warp-group matrix products (wgmma) fed by
// the tensor memory accelerator, for half and bfloat16 with head dim 64, forward
// (flash_attention_sm90.cu) and backward (flash_attention_sm90_backward.cu). FlashAttentionOp
// and its backward take them where `flash_sm90::refusal` is empty and otherwise run
// ops/cuda/flash_attention.cu's mma.sync kernels (Ampere and Orin, head dim 128, layouts TMA
// cannot read). Both write and read the same log-sum-exp, so either backward follows either
// forward.
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "runtime/tensor.h"

namespace ember::flash_sm90 {

/// Why the sm_90a kernels cannot take these inputs on this build and device, or "" when they
/// can. EMBER_FLASH_SM90=0 in the environment turns them off (the benchmarks compare kernels).
std::string refusal(const Tensor& q, const Tensor& k, const Tensor& v);

/// out [B, H, L, 64] and lse [B, H, L] (float32, natural log) from q, k, v as FlashAttentionOp
/// takes them; false, with nothing launched, where `refusal` would not be empty.
bool forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, float* lse, bool causal,
             double scale, cudaStream_t stream);

/// dq, dk, dv (contiguous, as q, k, v) from the forward's inputs, its output o and log-sum-exp
/// lse [B, H, L] and the output's gradient dout (contiguous); false, with nothing launched,
/// where `refusal` would not be empty. EMBER_FLASH_SM90=fwd keeps the backward on the mma.sync
/// kernels (the benchmark compares them).
bool backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& o, const Tensor& lse,
              const Tensor& dout, const Tensor& dq, const Tensor& dk, const Tensor& dv, bool causal, double scale,
              cudaStream_t stream);

}  // namespace ember::flash_sm90
