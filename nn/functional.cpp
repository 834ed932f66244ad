#include "nn/functional.h"

#include <cmath>

#include "autograd/grad_mode.h"
#include "ops/attention.h"
#include "ops/binary.h"
#include "ops/creation.h"
#include "ops/index.h"
#include "ops/layer_norm.h"
#include "ops/layout.h"
#include "ops/matmul.h"
#include "ops/loss.h"
#include "ops/random.h"
#include "ops/reduce.h"
#include "ops/softmax.h"
#include "ops/unary.h"
#include "ops/view.h"
#include "runtime/error.h"

namespace ember::nn {

namespace {

Tensor reduce(const Tensor& per_element, Reduction r, const Tensor& count = Tensor()) {
  switch (r) {
    case Reduction::None: return per_element;
    case Reduction::Sum: return sum(per_element);
    case Reduction::Mean: return count.defined() ? div(sum(per_element), count) : mean(per_element);
  }
  return per_element;
}

}  // namespace

namespace {

// Per-row negative log-likelihood −w[y]·logp[y] and the weights w[y] (zero at ignore_index).
std::pair<Tensor, Tensor> weighted_nll(const Tensor& logp, const Tensor& target, const Tensor& weight,
                                       int64_t ignore_index, const char* op) {
  const int64_t classes = logp.sizes()[1];
  EMBER_CHECK(target.dtype() == kInt64 && target.dim() == 1 && target.sizes()[0] == logp.sizes()[0],
              InvalidArgument, "[", op, "] expected int64 class indices of shape [", logp.sizes()[0],
              "] (or class probabilities of shape ", shape_str(logp.sizes()), "), got ", target.dtype(),
              " of shape ", shape_str(target.sizes()));
  Tensor valid = ne(target, ignore_index);
  EMBER_CHECK(all(logical_or(logical_and(ge(target, 0), lt(target, classes)), logical_not(valid))).item<bool>(),
              InvalidArgument, "[", op, "] a target is outside [0, ", classes, ")");
  // One-hot selection by comparison: differentiable through logp, and no gather needed.
  Tensor one_hot = eq(unsqueeze(target, 1), arange(classes, {kInt64, logp.device()})).to(logp.dtype());
  Tensor w = valid.to(logp.dtype());
  if (weight.defined()) w = mul(w, sum(mul(one_hot, unsqueeze(weight, 0)), {1}));
  return {mul(neg(sum(mul(logp, one_hot), {1})), w), w};
}

void check_weight(const Tensor& weight, int64_t classes, const char* op) {
  if (!weight.defined()) return;
  EMBER_CHECK(weight.dim() == 1 && weight.sizes()[0] == classes, InvalidArgument, "[", op,
              "] expected a class weight of shape [", classes, "], got ", shape_str(weight.sizes()));
}

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& target, Reduction reduction, int64_t ignore_index,
                     double label_smoothing, const Tensor& weight) {
  EMBER_CHECK(logits.dim() == 2, InvalidArgument, "[cross_entropy] expected logits [N, C], got shape ",
              shape_str(logits.sizes()));
  EMBER_CHECK(label_smoothing >= 0 && label_smoothing <= 1, InvalidArgument,
              "[cross_entropy] label_smoothing must be in [0, 1], got ", label_smoothing);
  const int64_t n = logits.sizes()[0], classes = logits.sizes()[1];
  check_weight(weight, classes, "cross_entropy");

  if (is_floating(target.dtype())) {
    Tensor logp = log_softmax(logits, 1);
    Tensor w_row = weight.defined() ? unsqueeze(weight.to(logits.dtype()), 0) : Tensor();
    // Class probabilities: −Σ_c w_c·q_c·logp_c per row, the mean taken over rows (PyTorch's rule).
    EMBER_CHECK(target.sizes() == logits.sizes(), ShapeMismatch, "[cross_entropy] probability targets must have the "
                "logits' shape ", shape_str(logits.sizes()), ", got ", shape_str(target.sizes()));
    Tensor q = label_smoothing > 0 ? add(mul(target, 1 - label_smoothing), label_smoothing / classes) : target;
    Tensor terms = mul(logp, q.to(logits.dtype()));
    if (w_row.defined()) terms = mul(terms, w_row);
    Tensor per_row = neg(sum(terms, {1}));
    return reduction == Reduction::Mean ? div(sum(per_row), static_cast<double>(n)) : reduce(per_row, reduction);
  }

  // Class indices: one fused op (ops/loss.h). The mean divides by the targets' summed weights
  // (the count of non-ignored rows when unweighted), for the smoothing term too, as PyTorch does.
  auto [rows, row_weight] = cross_entropy_rows(logits, target, weight, ignore_index, label_smoothing);
  return reduction == Reduction::Mean ? div(sum(rows), sum(row_weight)) : reduce(rows, reduction);
}

Tensor nll_loss(const Tensor& log_probs, const Tensor& target, Reduction reduction, int64_t ignore_index,
                const Tensor& weight) {
  EMBER_CHECK(log_probs.dim() == 2, InvalidArgument, "[nll_loss] expected log-probabilities [N, C], got shape ",
              shape_str(log_probs.sizes()));
  check_weight(weight, log_probs.sizes()[1], "nll_loss");
  auto [nll, w] = weighted_nll(log_probs, target, weight.defined() ? weight.to(log_probs.dtype()) : Tensor(),
                               ignore_index, "nll_loss");
  return reduce(nll, reduction, sum(w));
}

Tensor embedding(const Tensor& weight, const Tensor& indices, std::optional<int64_t> padding_idx) {
  EMBER_CHECK(indices.dtype() == kInt64 || indices.dtype() == kInt32, DTypeMismatch,
              "[embedding] expected int64 or int32 indices, got ", indices.dtype());
  EMBER_CHECK(weight.dim() == 2, InvalidArgument, "[embedding] expected a weight [num_embeddings, dim], got shape ",
              shape_str(weight.sizes()));
  Shape shape = indices.sizes();
  shape.push_back(weight.sizes()[1]);
  Tensor out = reshape(index_select(weight, 0, reshape(indices, {-1})), shape);
  if (!padding_idx) return out;
  // Same values, but rows looked up at padding_idx pass no gradient back.
  const int64_t pad_row = *padding_idx < 0 ? *padding_idx + weight.sizes()[0] : *padding_idx;
  Tensor pad = unsqueeze(eq(indices, pad_row), -1);
  return where(pad, out.detach(), out);
}

namespace {

// The trailing dims a normalisation works over, checked against x's shape.
DimList trailing_dims(const Tensor& x, const Shape& normalized_shape, const Tensor& weight, const Tensor& bias,
                      const char* op) {
  const int64_t k = static_cast<int64_t>(normalized_shape.size());
  EMBER_CHECK(k >= 1 && k <= x.dim(), InvalidArgument, "[", op, "] normalized_shape ", shape_str(normalized_shape),
              " must name 1 to ", x.dim(), " trailing dims of an input of shape ", shape_str(x.sizes()));
  EMBER_CHECK(Shape(x.sizes().end() - k, x.sizes().end()) == normalized_shape, ShapeMismatch, "[", op,
              "] normalized_shape ", shape_str(normalized_shape), " does not match the trailing dims of ",
              shape_str(x.sizes()));
  for (const Tensor* t : {&weight, &bias})
    EMBER_CHECK(!t->defined() || t->sizes() == normalized_shape, ShapeMismatch, "[", op, "] expected ",
                t == &weight ? "weight" : "bias", " of shape ", shape_str(normalized_shape), ", got ",
                shape_str(t->sizes()));
  DimList dims;
  for (int64_t d = x.dim() - k; d < x.dim(); ++d) dims.push_back(d);
  return dims;
}

bool is_half(DType t) { return t == kFloat16 || t == kBFloat16; }

int64_t product(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

}  // namespace

Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight, const Tensor& bias, double eps) {
  trailing_dims(x, normalized_shape, weight, bias, "layer_norm");
  EMBER_CHECK(is_floating(x.dtype()), InvalidArgument, "[layer_norm] expected a floating input, got ", x.dtype());
  return layer_norm_rows(x, product(normalized_shape), weight, bias, eps, false);
}

std::pair<Tensor, Tensor> add_layer_norm(const Tensor& x, const Tensor& residual, const Shape& normalized_shape,
                                         const Tensor& weight, const Tensor& bias, double eps) {
  EMBER_CHECK(x.sizes() == residual.sizes(), ShapeMismatch, "[add_layer_norm] x ", shape_str(x.sizes()),
              " and residual ", shape_str(residual.sizes()), " must have one shape");
  EMBER_CHECK(x.dtype() == residual.dtype(), DTypeMismatch, "[add_layer_norm] x is ", x.dtype(), " but residual ",
              residual.dtype());
  EMBER_CHECK(x.device() == residual.device(), DeviceMismatch, "[add_layer_norm] x is on ", x.device().str(),
              ", residual on ", residual.device().str());
  trailing_dims(x, normalized_shape, weight, bias, "add_layer_norm");
  EMBER_CHECK(is_floating(x.dtype()), InvalidArgument, "[add_layer_norm] expected a floating input, got ", x.dtype());
  auto records = [](const Tensor& t) { return t.defined() && t.requires_grad(); };
  if (grad_enabled() && (records(x) || records(residual) || records(weight) || records(bias))) {
    Tensor sum = add(x, residual);
    return {layer_norm(sum, normalized_shape, weight, bias, eps), sum};
  }
  return add_layer_norm_rows(x, residual, product(normalized_shape), weight, bias, eps);
}

Tensor rms_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight, std::optional<double> eps) {
  trailing_dims(x, normalized_shape, weight, Tensor(), "rms_norm");
  EMBER_CHECK(is_floating(x.dtype()), InvalidArgument, "[rms_norm] expected a floating input, got ", x.dtype());
  const double e = eps ? *eps
                   : x.dtype() == kFloat64  ? 2.220446049250313e-16
                   : x.dtype() == kFloat16  ? 9.765625e-4
                   : x.dtype() == kBFloat16 ? 7.8125e-3
                                            : 1.1920928955078125e-7;
  return layer_norm_rows(x, product(normalized_shape), weight, Tensor(), e, true);
}

namespace {
thread_local AttentionKernel current_attention_kernel = AttentionKernel::Auto;
}  // namespace

AttentionKernel attention_kernel() { return current_attention_kernel; }

AttentionKernelGuard::AttentionKernelGuard(AttentionKernel kernel) : previous_(current_attention_kernel) {
  current_attention_kernel = kernel;
}

AttentionKernelGuard::~AttentionKernelGuard() { current_attention_kernel = previous_; }

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& attn_mask,
                                    double dropout_p, bool is_causal, std::optional<double> scale, bool enable_gqa) {
  const char* op = "scaled_dot_product_attention";
  EMBER_CHECK(q.dim() >= 2 && k.dim() >= 2 && v.dim() >= 2, InvalidArgument, "[", op,
              "] expected q, k, v with at least 2 dims ([..., L, E]), got ", shape_str(q.sizes()), ", ",
              shape_str(k.sizes()), ", ", shape_str(v.sizes()));
  EMBER_CHECK(q.dtype() == k.dtype() && q.dtype() == v.dtype(), DTypeMismatch, "[", op,
              "] q, k and v must share a dtype, got ", q.dtype(), ", ", k.dtype(), ", ", v.dtype());
  EMBER_CHECK(q.size(-1) == k.size(-1), ShapeMismatch, "[", op, "] q's and k's last dims differ: ",
              shape_str(q.sizes()), " and ", shape_str(k.sizes()));
  EMBER_CHECK(k.size(-2) == v.size(-2), ShapeMismatch, "[", op, "] k and v must have as many positions (dim -2): ",
              shape_str(k.sizes()), " and ", shape_str(v.sizes()));
  EMBER_CHECK(!(is_causal && attn_mask.defined()), InvalidArgument, "[", op,
              "] is_causal and attn_mask cannot both be given (put the causal mask into attn_mask)");
  const double s = scale ? *scale : 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  // Before the math path repeats grouped key/value heads: the fused kernel reads them in place.
  if (current_attention_kernel != AttentionKernel::Math) {
    const bool needs_grad = grad_enabled() && (q.requires_grad() || k.requires_grad() || v.requires_grad());
    std::string refusal = flash_attention_refusal(q, k, v, attn_mask.defined(), dropout_p, needs_grad);
    if (refusal.empty() && q.dim() == 4 && k.dim() == 4 && q.size(-3) != k.size(-3) && !enable_gqa)
      refusal = "q's and k's heads differ and enable_gqa is off";
    if (refusal.empty()) return flash_attention(q, k, v, is_causal, s);
    EMBER_CHECK(current_attention_kernel == AttentionKernel::Auto, Unsupported, "[", op,
                "] AttentionKernel::Fused was asked for but ", refusal);
  }
  Tensor key = k, value = v;
  if (enable_gqa && q.dim() >= 3 && k.dim() >= 3 && q.size(-3) != k.size(-3)) {
    const int64_t hq = q.size(-3), hkv = k.size(-3);
    EMBER_CHECK(hkv > 0 && hq % hkv == 0 && v.size(-3) == hkv, ShapeMismatch, "[", op, "] grouped-query attention needs "
                "q's heads (", hq, ") to be a multiple of k's and v's (", hkv, " and ", v.size(-3), ")");
    // Query head h reads key/value head h / (hq / hkv), as PyTorch's repeat_interleave.
    auto repeat_heads = [&](const Tensor& t) {
      Shape grouped = t.sizes();
      grouped.insert(grouped.end() - 2, hq / hkv);
      Shape merged = t.sizes();
      merged[merged.size() - 3] = hq;
      return reshape(expand(unsqueeze(t, -3), grouped), merged);
    };
    key = repeat_heads(k);
    value = repeat_heads(v);
  }
  Tensor scores = matmul(q, transpose(key, -2, -1));
  if (is_half(scores.dtype())) scores = scores.to(kFloat32);
  Tensor weights;
  if (attn_mask.defined()) {
    scores = mul(scores, s);
    if (attn_mask.dtype() == kBool) scores = masked_fill(scores, logical_not(attn_mask), -INFINITY);
    else scores = add(scores, attn_mask.to(scores.dtype()));
    weights = softmax(scores, -1);
  } else {
    weights = attention_softmax(scores, s, is_causal);  // the scale and causal mask inside the softmax
  }
  weights = weights.to(q.dtype());
  if (dropout_p > 0) weights = dropout(weights, dropout_p, true);
  return matmul(weights, value);
}

Tensor l1_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  return reduce(abs(sub(input, target)), reduction);
}

Tensor smooth_l1_loss(const Tensor& input, const Tensor& target, Reduction reduction, double beta) {
  EMBER_CHECK(beta >= 0, InvalidArgument, "[smooth_l1_loss] beta must be non-negative, got ", beta);
  Tensor d = abs(sub(input, target));
  if (beta == 0) return reduce(d, reduction);
  Tensor quadratic = div(mul(d, d), 2 * beta);
  return reduce(where(lt(d, beta), quadratic, sub(d, beta / 2)), reduction);
}

Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& target, Reduction reduction) {
  EMBER_CHECK(logits.sizes() == target.sizes(), ShapeMismatch,
              "[binary_cross_entropy_with_logits] logits of shape ", shape_str(logits.sizes()),
              " and target of shape ", shape_str(target.sizes()), " differ");
  Tensor loss = add(sub(relu(logits), mul(logits, target)), log1p(exp(neg(abs(logits)))));
  return reduce(loss, reduction);
}

Tensor dropout(const Tensor& x, double p, bool training) {
  EMBER_CHECK(p >= 0 && p <= 1, InvalidArgument, "[dropout] probability must be in [0, 1], got ", p);
  if (!training || p == 0) return x;
  if (p == 1) return mul(x, 0.0);
  Tensor keep = bernoulli(full(x.sizes(), 1 - p, {x.dtype(), x.device()}));
  return mul(x, mul(keep, 1 / (1 - p)));
}

Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  Tensor d = sub(input, target);
  return reduce(mul(d, d), reduction);
}

}  // namespace ember::nn
