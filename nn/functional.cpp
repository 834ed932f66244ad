#include "nn/functional.h"

#include "ops/binary.h"
#include "ops/creation.h"
#include "ops/random.h"
#include "ops/reduce.h"
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

Tensor log_softmax(const Tensor& x, int64_t dim) { return sub(x, logsumexp(x, {dim}, true)); }

Tensor softmax(const Tensor& x, int64_t dim) { return exp(log_softmax(x, dim)); }

Tensor cross_entropy(const Tensor& logits, const Tensor& target, Reduction reduction, int64_t ignore_index,
                     double label_smoothing) {
  EMBER_CHECK(logits.dim() == 2, InvalidArgument, "[cross_entropy] expected logits [N, C], got shape ",
              shape_str(logits.sizes()));
  EMBER_CHECK(target.dtype() == kInt64 && target.dim() == 1 && target.sizes()[0] == logits.sizes()[0],
              InvalidArgument, "[cross_entropy] expected int64 class indices of shape [", logits.sizes()[0],
              "], got ", target.dtype(), " of shape ", shape_str(target.sizes()));
  EMBER_CHECK(label_smoothing >= 0 && label_smoothing <= 1, InvalidArgument,
              "[cross_entropy] label_smoothing must be in [0, 1], got ", label_smoothing);
  const int64_t classes = logits.sizes()[1];
  Tensor valid = ne(target, ignore_index);
  Tensor in_range = logical_and(ge(target, 0), lt(target, classes));
  EMBER_CHECK(all(logical_or(in_range, logical_not(valid))).item<bool>(), InvalidArgument,
              "[cross_entropy] a target is outside [0, ", classes, ")");
  Tensor logp = log_softmax(logits, 1);
  // One-hot selection by comparison: differentiable through logp, and no gather needed.
  Tensor one_hot = eq(unsqueeze(target, 1), arange(classes, {kInt64, logits.device()})).to(logits.dtype());
  Tensor nll = neg(sum(mul(logp, one_hot), {1}));
  if (label_smoothing > 0) {
    Tensor smooth = neg(mean(logp, {1}));
    nll = add(mul(nll, 1 - label_smoothing), mul(smooth, label_smoothing));
  }
  Tensor weight = valid.to(logits.dtype());
  nll = mul(nll, weight);
  return reduce(nll, reduction, sum(weight));
}

Tensor nll_loss(const Tensor& log_probs, const Tensor& target, Reduction reduction, int64_t ignore_index) {
  EMBER_CHECK(log_probs.dim() == 2, InvalidArgument, "[nll_loss] expected log-probabilities [N, C], got shape ",
              shape_str(log_probs.sizes()));
  EMBER_CHECK(target.dtype() == kInt64 && target.dim() == 1 && target.sizes()[0] == log_probs.sizes()[0],
              InvalidArgument, "[nll_loss] expected int64 class indices of shape [", log_probs.sizes()[0], "], got ",
              target.dtype(), " of shape ", shape_str(target.sizes()));
  const int64_t classes = log_probs.sizes()[1];
  Tensor valid = ne(target, ignore_index);
  EMBER_CHECK(all(logical_or(logical_and(ge(target, 0), lt(target, classes)), logical_not(valid))).item<bool>(),
              InvalidArgument, "[nll_loss] a target is outside [0, ", classes, ")");
  Tensor one_hot = eq(unsqueeze(target, 1), arange(classes, {kInt64, log_probs.device()})).to(log_probs.dtype());
  Tensor weight = valid.to(log_probs.dtype());
  Tensor nll = mul(neg(sum(mul(log_probs, one_hot), {1})), weight);
  return reduce(nll, reduction, sum(weight));
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
