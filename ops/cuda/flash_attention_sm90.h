// The fused attention forward for Hopper (sm_90a): warp-group matrix products (wgmma) fed by
// the tensor memory accelerator, for half and bfloat16 with head dim 64. FlashAttentionOp takes
// it where `flash_sm90::refusal` is empty and otherwise runs ops/cuda/flash_attention.cu's
// mma.sync kernel (Ampere and Orin, head dim 128, layouts TMA cannot read); the backward is
// that file's for both.
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "runtime/tensor.h"

namespace ember::flash_sm90 {

/// Why the sm_90a forward cannot take these inputs on this build and device, or "" when it can.
/// EMBER_FLASH_SM90=0 in the environment turns it off (the benchmarks compare the two kernels).
std::string refusal(const Tensor& q, const Tensor& k, const Tensor& v);

/// out [B, H, L, 64] and lse [B, H, L] (float32, natural log) from q, k, v as FlashAttentionOp
/// takes them; false, with nothing launched, where `refusal` would not be empty.
bool forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, float* lse, bool causal,
             double scale, cudaStream_t stream);

}  // namespace ember::flash_sm90
