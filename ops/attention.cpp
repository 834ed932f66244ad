#include "ops/attention.h"

#include <cmath>

#include "autograd/grad_mode.h"
#include "ops/binary.h"
#include "ops/creation.h"
#include "ops/index.h"
#include "ops/layout.h"
#include "ops/matmul.h"
#include "ops/reduce.h"
#include "ops/unary.h"
#include "ops/view.h"
#include "runtime/error.h"

namespace ember {

namespace {

// A row of q, k or v must start on a 16-byte boundary for the kernels' 16-byte copies.
bool rows_aligned(const Tensor& t) {
  const auto address = reinterpret_cast<uintptr_t>(t.data());
  const int64_t per_16_bytes = static_cast<int64_t>(16 / t.itemsize());
  return t.strides()[3] == 1 && address % 16 == 0 && t.strides()[2] % per_16_bytes == 0 &&
         t.strides()[1] % per_16_bytes == 0 && t.strides()[0] % per_16_bytes == 0;
}

Tensor aligned(const Tensor& t) { return rows_aligned(t) ? t : t.contiguous(); }

// Key/value heads repeated for grouped-query attention: [B, Hkv, S, D] → [B, H, S, D].
Tensor repeat_heads(const Tensor& t, int64_t heads) {
  const int64_t kv_heads = t.sizes()[1];
  if (kv_heads == heads) return t;
  const Shape& s = t.sizes();
  return reshape(expand(unsqueeze(t, 2), {s[0], kv_heads, heads / kv_heads, s[2], s[3]}), {s[0], heads, s[2], s[3]});
}

// Sums the gradient of repeated heads back onto the key/value heads.
Tensor sum_heads(const Tensor& g, int64_t kv_heads) {
  const Shape& s = g.sizes();
  if (s[1] == kv_heads) return g;
  return sum(reshape(g, {s[0], kv_heads, s[1] / kv_heads, s[2], s[3]}), {2});
}

}  // namespace

std::string flash_attention_refusal(const Tensor& q, const Tensor& k, const Tensor& v, bool has_mask,
                                    double dropout_p, bool needs_grad) {
  if (!q.device().is_cuda()) return "the fused kernel runs on CUDA devices only";
  if (q.dtype() == kFloat32 && needs_grad)
    return "the float32 fused kernel is for inference: it has no backward, and an input needs a gradient";
  if (q.dtype() != kFloat16 && q.dtype() != kBFloat16 && q.dtype() != kFloat32)
    return str_cat("the fused kernel takes float16, bfloat16 and (for inference) float32, got ", q.dtype());
  if (q.dim() != 4 || k.dim() != 4 || v.dim() != 4) return "the fused kernel takes 4-D q, k and v ([B, H, L, D])";
  if (q.sizes()[3] != 64 && q.sizes()[3] != 128)
    return str_cat("the fused kernel takes head dims 64 and 128, got ", q.sizes()[3]);
  if (v.sizes()[3] != q.sizes()[3]) return "the fused kernel needs v's head dim to equal q's";
  if (k.sizes()[0] != q.sizes()[0] || v.sizes()[0] != q.sizes()[0] || v.sizes()[1] != k.sizes()[1])
    return "the fused kernel needs q, k and v to share the batch dim, and k and v their heads";
  if (k.sizes()[1] == 0 || q.sizes()[1] % k.sizes()[1] != 0)
    return "the fused kernel needs q's heads to be a multiple of k's";
  if (k.sizes()[2] == 0) return "the fused kernel needs at least one key";
  if (q.sizes()[2] > INT32_MAX || k.sizes()[2] > INT32_MAX || q.sizes()[0] * q.sizes()[1] > 65535)
    return "the fused kernel takes at most 2^31 positions and 65535 batch·heads";
  if (has_mask) return "the fused kernel takes no attention mask other than is_causal";
  if (dropout_p > 0) return "the fused kernel takes no dropout";
  return "";
}

Tensor flash_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal, double scale) {
  const Shape& s = q.sizes();
  if (q.dtype() == kFloat32)
    return apply(std::make_shared<FlashAttentionFloatOp>(causal, scale), {aligned(q), aligned(k), aligned(v)},
                 {{s, q.dtype()}})[0];
  auto op = std::make_shared<FlashAttentionOp>(causal, scale);
  return apply(op, {aligned(q), aligned(k), aligned(v)}, {{s, q.dtype()}, {{s[0], s[1], s[2]}, kFloat32}})[0];
}

void FlashAttentionOp::forward_cpu(const TensorList&, const TensorList&) {
  throw_error(ErrorCode::Unsupported, "[flash_attention] runs on CUDA devices only (scaled_dot_product_attention "
                                      "uses the math path on the CPU)");
}

void FlashAttentionFloatOp::forward_cpu(const TensorList&, const TensorList&) {
  throw_error(ErrorCode::Unsupported, "[flash_attention_float32] runs on CUDA devices only");
}

void FlashAttentionBackwardOp::forward_cpu(const TensorList&, const TensorList&) {
  throw_error(ErrorCode::Unsupported, "[flash_attention_backward] runs on CUDA devices only");
}

bool FlashAttentionOp::differentiable() const { return true; }

TensorList FlashAttentionOp::backward(const BackwardContext& ctx) const {
  const Tensor &q = ctx.inputs[0], &k = ctx.inputs[1], &v = ctx.inputs[2];
  const Tensor& g = ctx.grads[0];
  if (!grad_enabled()) {
    auto op = std::make_shared<FlashAttentionBackwardOp>(causal, scale);
    return apply(op, {q, k, v, ctx.outputs[0], ctx.outputs[1], g.contiguous()},
                 {{q.sizes(), q.dtype()}, {k.sizes(), k.dtype()}, {v.sizes(), v.dtype()}});
  }
  // Under create_graph: the same gradients with public ops (the probabilities recomputed in
  // float32 from q and k), so they can be differentiated again.
  const int64_t heads = q.sizes()[1], kv_heads = k.sizes()[1];
  const Tensor key = repeat_heads(k, heads), value = repeat_heads(v, heads);
  Tensor scores = mul(matmul(q, transpose(key, -2, -1)).to(kFloat32), scale);
  if (causal) {
    const int64_t L = q.sizes()[2], S = k.sizes()[2];
    scores = masked_fill(scores, logical_not(tril(ones({L, S}, {kBool, q.device()}))), -INFINITY);
  }
  const Tensor p = exp(sub(scores, logsumexp(scores, {-1}, true)));
  const Tensor gf = g.to(kFloat32);
  const Tensor dp = matmul(gf, transpose(value.to(kFloat32), -2, -1));
  const Tensor ds = mul(p, sub(dp, sum(mul(dp, p), {-1}, true)));
  TensorList grads(3);
  grads[0] = mul(matmul(ds, key.to(kFloat32)), scale).to(q.dtype());
  grads[1] = sum_heads(mul(matmul(transpose(ds, -2, -1), q.to(kFloat32)), scale), kv_heads).to(k.dtype());
  grads[2] = sum_heads(matmul(transpose(p, -2, -1), gf), kv_heads).to(v.dtype());
  return grads;
}

}  // namespace ember
