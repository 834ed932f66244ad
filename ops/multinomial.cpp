// multinomial: weights checked, then inverse-CDF draws (SearchCdfOp) or exponential races
// (topk of log(u)/w) for distinct draws.
#include <cmath>

#include "ops/binary.h"
#include "ops/creation.h"
#include "ops/index.h"
#include "ops/join.h"
#include "ops/random.h"
#include "ops/reduce.h"
#include "ops/scan.h"
#include "ops/sort.h"
#include "ops/unary.h"
#include "ops/view.h"
#include "runtime/error.h"

namespace ember {

Tensor multinomial(const Tensor& probs, int64_t num_samples, bool replacement, Generator* gen) {
  EMBER_CHECK(is_floating(probs.dtype()), InvalidArgument, "[multinomial] expected floating weights, got ", probs.dtype());
  EMBER_CHECK(probs.dim() == 1 || probs.dim() == 2, InvalidArgument,
              "[multinomial] expected weights of shape [n] or [rows, n], got ", shape_str(probs.sizes()));
  const Tensor p2 = probs.dim() == 1 ? unsqueeze(probs, 0) : probs;
  const int64_t rows = p2.size(0), n = p2.size(1);
  EMBER_CHECK(num_samples > 0, InvalidArgument, "[multinomial] num_samples must be positive, got ", num_samples);
  EMBER_CHECK(n > 0, InvalidArgument, "[multinomial] there are no categories");
  const DType acc = probs.dtype() == kFloat64 ? kFloat64 : kFloat32;
  const Tensor w = p2.to(acc).contiguous();
  // One host read checks every row (the draws are for the host anyway, in generation).
  if (rows > 0) {
    const Tensor positive = gt(w, 0.0);
    const Tensor bad = logical_or(logical_not(lt(abs(w), INFINITY)), lt(w, 0.0));  // NaN, ±inf or negative
    const Tensor counts = sum(positive, {1});
    const Tensor summary = stack({sum(bad).to(kFloat64), min(counts).to(kFloat64)}).to(Device::cpu());
    const double* s = summary.data_ptr<double>();
    EMBER_CHECK(s[0] == 0, InvalidArgument, "[multinomial] weights must be finite and non-negative");
    EMBER_CHECK(s[1] > 0, InvalidArgument, "[multinomial] a row of weights sums to zero");
    EMBER_CHECK(replacement || s[1] >= static_cast<double>(num_samples), InvalidArgument, "[multinomial] cannot draw ",
                num_samples, " distinct categories from a row with ", static_cast<int64_t>(s[1]),
                " positive weights (pass replacement = true)");
  }
  Tensor out;
  if (replacement) {
    const Tensor u = rand({rows, num_samples}, {acc, probs.device()}, gen);
    out = apply1(std::make_shared<SearchCdfOp>(), {cumsum(w, 1), u}, {{rows, num_samples}, kInt64});
  } else {
    // Exponential races: category i finishes at time E_i / w_i with E_i = −log(1 − u_i); the
    // first k to finish are a draw without replacement. Zero weights never finish.
    const Tensor race = rand({rows, n}, {acc, probs.device()}, gen);
    const Tensor keys = where(gt(w, 0.0), div(log1p(neg(race)), w), -INFINITY);
    out = topk(keys, num_samples, 1, true).indices;
  }
  return probs.dim() == 1 ? squeeze(out, 0) : out;
}

}  // namespace ember
