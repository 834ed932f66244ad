// softmax and log_softmax ops against float64 references: every float dtype, the last dim
// (warp rows and block rows past 1024), a middle dim and the first (column layout), masked
// (-inf) entries; the fused backward against the float64 gradient; gradcheck and gradgradcheck;
// attention's scaled, causal softmax against scaling, masking and softmax.
#include <cmath>

#include "tests/harness.h"

using namespace ember;
using namespace ember::test;

namespace {

// Softmax (or log-softmax) of r along dim, and its gradient for output gradient g.
// The gradient is taken from y rounded to `dt`, as the kernels (and PyTorch's) compute it from
// the stored output.
std::pair<Ref, Ref> softmax_ref(const Ref& r, const Ref& g, int64_t dim, bool log, DType dt) {
  Ref y = r, dx = r;
  int64_t outer = 1, inner = 1;
  const int64_t n = r.shape[static_cast<size_t>(dim)];
  for (int64_t i = 0; i < static_cast<int64_t>(r.shape.size()); ++i) {
    if (i < dim) outer *= r.shape[static_cast<size_t>(i)];
    if (i > dim) inner *= r.shape[static_cast<size_t>(i)];
  }
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t in = 0; in < inner; ++in) {
      auto at = [&](int64_t i) { return static_cast<size_t>((o * n + i) * inner + in); };
      double m = -INFINITY, s = 0, gs = 0, gys = 0;
      for (int64_t i = 0; i < n; ++i) m = std::max(m, r.v[at(i)]);
      for (int64_t i = 0; i < n; ++i) s += std::exp(r.v[at(i)] - m);
      for (int64_t i = 0; i < n; ++i) y.v[at(i)] = log ? r.v[at(i)] - m - std::log(s) : std::exp(r.v[at(i)] - m) / s;
      const Ref yr = round_to(y, dt);
      for (int64_t i = 0; i < n; ++i) {
        gs += g.v[at(i)];
        gys += g.v[at(i)] * yr.v[at(i)];
      }
      for (int64_t i = 0; i < n; ++i)
        dx.v[at(i)] = log ? g.v[at(i)] - std::exp(yr.v[at(i)]) * gs : yr.v[at(i)] * (g.v[at(i)] - gys);
    }
  return {y, dx};
}

}  // namespace

DEVICE_TEST("softmax: softmax and log_softmax match float64 along every dim, every float dtype, and back") {
  struct Case {
    Shape shape;
    int64_t dim;
  };
  const std::vector<Case> cases = {{{7, 33}, 1}, {{3, 2500}, -1}, {{4, 5, 6}, 1}, {{9, 4, 3}, 0}, {{5}, 0}, {{2, 3, 0}, 1}};
  for (bool log : {false, true})
    for (const Case& c : cases)
      for (DType dt : kFloatTypes) {
        INFO(std::string(log ? "log_softmax " : "softmax "), shape_str(c.shape), " dim ", c.dim, " ", dt);
        Ref x = round_to(random_ref(c.shape, -4, 4, 40), dt), g = round_to(random_ref(c.shape, -1, 1, 41), dt);
        const int64_t dim = c.dim < 0 ? c.dim + static_cast<int64_t>(c.shape.size()) : c.dim;
        auto [want_y, want_dx] = softmax_ref(x, g, dim, log, dt);
        Tensor xt = from_ref(x, dt, device).requires_grad_();
        Tensor y = log ? log_softmax(xt, c.dim) : softmax(xt, c.dim);
        check_close(y, want_y, dt);
        backward({y}, {from_ref(g, dt, device)});
        check_close(xt.grad(), want_dx, dt, 2);
      }
  // Masked entries: exp(-inf) is 0 and a row of -inf is NaN, as PyTorch.
  Tensor masked = from_vector<float>({0, -INFINITY, 1, -INFINITY, -INFINITY, -INFINITY}, {2, 3}, {kFloat32, device});
  Tensor p = softmax(masked, 1);
  CHECK(p.to(Device::cpu()).data_ptr<float>()[1] == 0);
  CHECK(std::isnan(p.to(Device::cpu()).data_ptr<float>()[4]));
  // A NaN anywhere in a row makes the whole row NaN (as PyTorch), also in the CPU's
  // vectorised float rows (9 wide, past the 4-wide loop and its tail).
  std::vector<float> with_nan(18, 0.5f);
  with_nan[3] = NAN;
  for (bool log : {false, true}) {
    const Tensor t = from_vector<float>(with_nan, {2, 9}, {kFloat32, device});
    const Ref r = to_ref(log ? log_softmax(t, 1) : softmax(t, 1));
    for (int i = 0; i < 9; ++i) CHECK(std::isnan(r.v[static_cast<size_t>(i)]));
    for (int i = 9; i < 18; ++i) CHECK(r.v[static_cast<size_t>(i)] == doctest::Approx(log ? -std::log(9.0) : 1 / 9.0));
  }
  for (bool log : {false, true}) {
    auto fn = [log](const TensorList& in) { return TensorList{log ? log_softmax(in[0], 1) : softmax(in[0], 1)}; };
    check_gradcheck(log ? "log_softmax dim 1" : "softmax dim 1", fn, {random_leaf({3, 4, 2}, device, 42)});
    check_gradgradcheck(log ? "log_softmax dim 1" : "softmax dim 1", fn, {random_leaf({3, 4, 2}, device, 43)});
  }
  check_error([&] { softmax(ones({2}, {kInt64, device}), 0); }, ErrorCode::InvalidArgument, "expected a floating tensor");
  check_error([&] { softmax(ones({2}, {kFloat32, device}), 3); }, ErrorCode::InvalidArgument, "softmax");
}

DEVICE_TEST("softmax: attention's scaled and causal softmax equals scaling, masked_fill(-inf) and softmax") {
  // [2, 3, L, S] with L < S, L > S and L = S; warp rows and block rows (S past 1024).
  const std::vector<std::pair<int64_t, int64_t>> sizes = {{5, 7}, {6, 4}, {8, 8}, {3, 1500}};
  for (const auto& size : sizes)
    for (bool causal : {false, true})
      for (DType dt : kFloatTypes) {
        const int64_t L = size.first, S = size.second;  // not a structured binding: INFO captures it
        INFO("L ", L, " S ", S, causal ? " causal " : " ", dt);
        const Shape shape{2, 3, L, S};
        const double scale = 0.37;
        Ref x = round_to(random_ref(shape, -4, 4, 50), dt), g = round_to(random_ref(shape, -1, 1, 51), dt);
        // The reference: scores scaled (in float64), masked positions -inf, softmax, and the
        // gradient through the mask (0 there) and the scale.
        Ref scaled = x;
        for (size_t k = 0; k < x.v.size(); ++k) {
          const int64_t i = static_cast<int64_t>(k) / S % L, j = static_cast<int64_t>(k) % S;
          scaled.v[k] = causal && j > i ? -INFINITY : x.v[k] * scale;
        }
        auto [want_y, want_dx] = softmax_ref(scaled, g, 3, false, dt);
        for (size_t k = 0; k < x.v.size(); ++k) want_dx.v[k] = std::isinf(scaled.v[k]) ? 0 : want_dx.v[k] * scale;
        Tensor xt = from_ref(x, dt, device).requires_grad_();
        Tensor y = attention_softmax(xt, scale, causal);
        check_close(y, want_y, dt, 2);
        backward({y}, {from_ref(g, dt, device)});
        check_close(xt.grad(), want_dx, dt, 2);
      }
  for (bool causal : {false, true}) {
    auto fn = [causal](const TensorList& in) { return TensorList{attention_softmax(in[0], 0.5, causal)}; };
    check_gradcheck(causal ? "attention_softmax causal" : "attention_softmax", fn, {random_leaf({2, 4, 3}, device, 52)});
    check_gradgradcheck(causal ? "attention_softmax causal" : "attention_softmax", fn,
                        {random_leaf({2, 3, 4}, device, 53)});
  }
  check_error([&] { attention_softmax(ones({4}, {kFloat32, device}), 1, true); }, ErrorCode::InvalidArgument,
              "a causal mask needs scores of shape [..., L, S]");
}
