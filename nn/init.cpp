#include "nn/init.h"

#include <cmath>

#include "autograd/grad_mode.h"
#include "ops/binary.h"
#include "ops/copy.h"
#include "ops/random.h"
#include "runtime/error.h"

namespace ember::nn::init {

std::pair<int64_t, int64_t> fans(const Tensor& w) {
  EMBER_CHECK(w.dim() >= 2, InvalidArgument, "[init] fan in and fan out need a weight of at least 2 dims, got shape ",
              shape_str(w.sizes()));
  int64_t receptive = 1;
  for (int64_t d = 2; d < w.dim(); ++d) receptive *= w.sizes()[d];
  return {w.sizes()[1] * receptive, w.sizes()[0] * receptive};
}

void uniform_(const Tensor& t, double lo, double hi, Generator* gen) {
  NoGradGuard no_grad;
  Tensor r = rand(t.sizes(), {t.dtype(), t.device()}, gen);
  copy_(t, add(mul(r, hi - lo), lo));
}

void normal_(const Tensor& t, double mean, double std, Generator* gen) {
  NoGradGuard no_grad;
  Tensor r = randn(t.sizes(), {t.dtype(), t.device()}, gen);
  copy_(t, add(mul(r, std), mean));
}

void kaiming_uniform_(const Tensor& w, double a, Generator* gen) {
  const double gain = std::sqrt(2.0 / (1 + a * a));
  const double bound = gain * std::sqrt(3.0 / static_cast<double>(fans(w).first));
  uniform_(w, -bound, bound, gen);
}

void kaiming_normal_(const Tensor& w, double a, Generator* gen) {
  const double gain = std::sqrt(2.0 / (1 + a * a));
  normal_(w, 0, gain / std::sqrt(static_cast<double>(fans(w).first)), gen);
}

void xavier_uniform_(const Tensor& w, double gain, Generator* gen) {
  auto [in, out] = fans(w);
  const double bound = gain * std::sqrt(6.0 / static_cast<double>(in + out));
  uniform_(w, -bound, bound, gen);
}

void xavier_normal_(const Tensor& w, double gain, Generator* gen) {
  auto [in, out] = fans(w);
  normal_(w, 0, gain * std::sqrt(2.0 / static_cast<double>(in + out)), gen);
}

}  // namespace ember::nn::init
