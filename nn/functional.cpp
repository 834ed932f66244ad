#include "nn/functional.h"

#include "ops/binary.h"
#include "ops/creation.h"
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

Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  Tensor d = sub(input, target);
  return reduce(mul(d, d), reduction);
}

}  // namespace ember::nn
