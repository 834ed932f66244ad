// Autograd: the engine (ordering, summing, accumulation, retain_graph, create_graph, grad(),
// hooks, views, version checks, grad mode) and gradcheck of every differentiable op on every
// device, with gradgradcheck on a representative subset.
#include <cmath>

#include "tests/harness.h"

using namespace ember;
using namespace ember::test;

namespace {

// A float64 leaf on `device` with values uniform in [lo, hi), from a fixed seed.
Tensor leaf(const Shape& shape, Device device, double lo = -1, double hi = 1, uint64_t seed = 1) {
  Ref r = random_ref(shape, lo, hi, seed);
  Tensor t = from_ref(r, kFloat64, device);
  t.requires_grad_();
  return t;
}

void expect_gradcheck(const std::string& what, const GradcheckFn& fn, const TensorList& inputs,
                      const GradcheckOptions& options = {}) {
  INFO(what);
  std::string err = gradcheck(fn, inputs, options);
  CHECK_MESSAGE(err.empty(), err);
}

void expect_gradgradcheck(const std::string& what, const GradcheckFn& fn, const TensorList& inputs) {
  INFO(what);
  std::string err = gradgradcheck(fn, inputs);
  CHECK_MESSAGE(err.empty(), err);
}

using Unary = std::function<Tensor(const Tensor&)>;

}  // namespace

DEVICE_TEST("autograd: gradients sum over uses and accumulate into leaves") {
  Tensor x = from_vector<double>({1, 2, 3}, {3}, {kFloat64, device});
  x.requires_grad_();
  Tensor y = sum(add(mul(x, x), mul(x, 3.0)));  // d/dx = 2x + 3
  CHECK(y.requires_grad());
  CHECK_FALSE(y.is_leaf());
  CHECK(x.is_leaf());
  CHECK(y.grad_fn()->name() == "sumBackward");
  y.backward(Tensor(), /*retain_graph=*/true);
  check_equal_values(x.grad(), {5, 7, 9});
  y.backward();  // a second pass accumulates
  check_equal_values(x.grad(), {10, 14, 18});
  // The graph was freed by the last pass.
  check_error([&] { y.backward(); }, ErrorCode::InvalidArgument, "a second time");
}

DEVICE_TEST("autograd: backward of non-scalars needs a gradient of the output's shape") {
  Tensor x = leaf({2, 3}, device);
  Tensor y = mul(x, 2.0);
  check_error([&] { y.backward(); }, ErrorCode::InvalidArgument, "only for one-element outputs");
  check_error([&] { y.backward(ones({3}, {kFloat64, device})); }, ErrorCode::ShapeMismatch, "has shape [3]");
  y.backward(full({2, 3}, 0.5, {kFloat64, device}));
  check_close(x.grad(), to_ref(full({2, 3}, 1.0, {kFloat64})), kFloat64);
}

DEVICE_TEST("autograd: grad mode, detach and requires_grad rules") {
  Tensor x = leaf({3}, device);
  {
    NoGradGuard no_grad;
    CHECK_FALSE(grad_enabled());
    Tensor y = exp(x);
    CHECK_FALSE(y.requires_grad());
    {
      EnableGradGuard enable;
      CHECK(exp(x).requires_grad());
    }
  }
  CHECK(grad_enabled());
  Tensor d = x.detach();
  CHECK_FALSE(d.requires_grad());
  CHECK(d.shares_storage(x));
  CHECK_FALSE(exp(d).requires_grad());
  // Integer and comparison results never require grad.
  CHECK_FALSE(gt(x, 0.0).requires_grad());
  CHECK_FALSE(argmax(x).requires_grad());
  check_error([&] { ones({2}, {kInt64, device}).requires_grad_(); }, ErrorCode::InvalidArgument,
              "only floating-point tensors can require gradients, got int64");
  check_error([&] { sum(exp(d)).backward(); }, ErrorCode::InvalidArgument, "does not require grad");
  // In-place writes to leaves that require grad are refused, as in PyTorch.
  check_error([&] { add_(x, 1.0); }, ErrorCode::InvalidArgument, "a leaf tensor that requires grad");
}

DEVICE_TEST("autograd: in-place ops on non-leaf tensors rebase the graph") {
  Tensor x = leaf({2, 3}, device, 0.5, 2, 1), w = leaf({3}, device, 0.5, 2, 2);
  // y = clamp(((1.5x + w)·w − x) / (w + 3), −0.5, 0.5) − x, written in place.
  auto chain = [](const TensorList& in) {
    Tensor y = mul(in[0], 1.5);
    add_(y, in[1]);
    mul_(y, in[1]);
    sub_(y, in[0]);
    div_(y, add(in[1], 3.0));
    clamp_(y, -0.5, 0.5);
    return TensorList{y};
  };
  expect_gradcheck("in-place chain", chain, {x, w});
  // The written tensor's version moves and its node is the last op's.
  Tensor y = mul(x, 2.0);
  const uint64_t v0 = y.version();
  mul_(y, w);
  CHECK(y.version() > v0);
  CHECK(y.grad_fn()->name() == "mulBackward");
  // copy_ into a tensor that did not require grad makes it part of the graph.
  Tensor buf = zeros({2, 3}, {kFloat64, device});
  copy_(buf, w);  // broadcast over rows
  CHECK(buf.requires_grad());
  sum(mul(buf, x)).backward();
  check_close(w.grad(), to_ref(sum(x.detach(), {0})), kFloat64);
  // zero_ cuts the history: nothing flows back through a constant.
  Tensor z = mul(x, 3.0);
  zero_(z);
  CHECK_FALSE(z.requires_grad());
}

DEVICE_TEST("autograd: in-place ops refuse views and outdate saved tensors") {
  Tensor x = leaf({2, 3}, device);
  Tensor y = mul(x, 2.0);
  Tensor row = y.select(0, 0);
  check_error([&] { add_(row, 1.0); }, ErrorCode::Unsupported, "not supported on views");
  // An in-place op that writes only some elements is refused, not recorded with garbage.
  Tensor target = zeros({4}, {kFloat64, device});
  check_error([&] { scatter_add_(target, 0, from_vector<int64_t>({1}, {1}, {kInt64, device}), x.reshape({-1}).slice(0, 0, 1)); },
              ErrorCode::Unsupported, "not recorded by autograd");
  // exp saves its output; changing it in place makes backward refuse.
  Tensor e = exp(mul(x, 1.0));
  Tensor loss = sum(mul(e, e));
  add_(e, 1.0);
  check_error([&] { loss.backward(); }, ErrorCode::InvalidArgument, "modified by an in-place operation");
}

DEVICE_TEST("autograd: gradcheck of as_strided, overlapping windows included") {
  Tensor x = leaf({10}, device);
  expect_gradcheck("as_strided windows", [](const TensorList& in) {
    return TensorList{as_strided(in[0], {4, 3}, {2, 1}, std::nullopt)};
  }, {x});
  Tensor m = leaf({3, 4}, device, -1, 1, 3);
  expect_gradcheck("as_strided of a transposed view", [](const TensorList& in) {
    return TensorList{as_strided(in[0].transpose(0, 1), {2, 2}, {1, 4}, 1)};
  }, {m});
}

DEVICE_TEST("autograd: changing a saved tensor in place is an error at backward") {
  Tensor w = leaf({3}, device);
  Tensor v = leaf({3}, device, -1, 1, 2);
  Tensor y = sum(mul(w, v));
  {
    NoGradGuard no_grad;
    add_(w, 1.0);  // an optimizer-style update between forward and backward
  }
  check_error([&] { y.backward(); }, ErrorCode::InvalidArgument,
              "modified by an in-place operation: input 0 of mul was saved at version 0 and is now at version 1");
}

DEVICE_TEST("autograd: grad() returns gradients without touching .grad") {
  Tensor x = leaf({3}, device), z = leaf({3}, device, -1, 1, 5);
  Tensor h = tanh(x);
  Tensor y = sum(mul(h, h));
  TensorList g = grad({y}, {x, h});
  CHECK_FALSE(x.grad().defined());
  Ref hx = map_ref(to_ref(x), [](double v) { return std::tanh(v); });
  check_close(g[1], map_ref(hx, [](double t) { return 2 * t; }), kFloat64);
  check_close(g[0], map_ref(hx, [](double t) { return 2 * t * (1 - t * t); }), kFloat64);
  check_error([&] { grad({sum(mul(x, 2.0))}, {z}); }, ErrorCode::InvalidArgument, "was not used");
  TensorList unused = grad({sum(mul(x, 2.0))}, {z}, {}, std::nullopt, false, /*allow_unused=*/true);
  CHECK_FALSE(unused[0].defined());
}

DEVICE_TEST("autograd: higher-order gradients through create_graph") {
  Tensor x = from_vector<double>({0.5, -1.5, 2}, {3}, {kFloat64, device});
  x.requires_grad_();
  Tensor y = sum(mul(mul(x, x), x));                             // Σ x³
  Tensor g = grad({y}, {x}, {}, std::nullopt, /*create_graph=*/true)[0];  // 3x²
  check_equal_values(g.detach(), {0.75, 6.75, 12});
  CHECK(g.requires_grad());
  Tensor gg = grad({sum(g)}, {x})[0];  // 6x
  check_equal_values(gg, {3, -9, 12});
}

DEVICE_TEST("autograd: hooks on leaves and intermediates, retain_grad, post-accumulate hooks") {
  Tensor x = leaf({3}, device);
  Tensor h = mul(x, 2.0);
  h.retain_grad();
  int post_calls = 0;
  h.register_hook([](const Tensor& g) { return mul(g, 10.0); });
  x.register_hook([](const Tensor& g) { return add(g, 1.0); });
  x.register_post_accumulate_grad_hook([&](const Tensor& t) {
    ++post_calls;
    CHECK(t.grad().defined());
  });
  sum(h).backward();
  // dh = 1 -> hook x10 -> dx = 20 -> leaf hook +1 = 21.
  check_equal_values(h.grad(), {10, 10, 10});
  check_equal_values(x.grad(), {21, 21, 21});
  CHECK(post_calls == 1);
}

DEVICE_TEST("autograd: backward through views") {
  Tensor x = leaf({3, 4}, device);
  // transpose -> reshape -> strided slice -> select -> expand: every view records its backward.
  Tensor y = x.transpose(0, 1).reshape({-1}).slice(0, 1, 11, 3);  // elements 1, 4, 7, 10 of xᵀ
  Tensor z = sum(mul(expand(unsqueeze(y, 0), {2, 4}), 1.0)) ;
  z.backward();
  // xᵀ flat index i -> x[i % 3][i / 3]; each picked element gets 2 (expanded twice).
  std::vector<double> expected(12, 0);
  for (int i : {1, 4, 7, 10}) expected[(i % 3) * 4 + i / 3] = 2;
  check_equal_values(x.grad(), expected);
}

DEVICE_TEST("autograd: gradcheck of the unary ops") {
  struct Case {
    const char* name;
    Unary fn;
    double lo, hi;
  };
  // Ranges avoid kinks (relu at 0, clamp bounds, hardswish at ±3) and domain edges.
  std::vector<Case> cases = {
      {"neg", [](const Tensor& t) { return neg(t); }, -2, 2},
      {"abs", [](const Tensor& t) { return abs(t); }, 0.2, 2},
      {"exp", [](const Tensor& t) { return exp(t); }, -2, 2},
      {"log", [](const Tensor& t) { return log(t); }, 0.5, 3},
      {"log1p", [](const Tensor& t) { return log1p(t); }, -0.5, 2},
      {"expm1", [](const Tensor& t) { return expm1(t); }, -2, 2},
      {"sqrt", [](const Tensor& t) { return sqrt(t); }, 0.5, 3},
      {"rsqrt", [](const Tensor& t) { return rsqrt(t); }, 0.5, 3},
      {"sin", [](const Tensor& t) { return sin(t); }, -3, 3},
      {"cos", [](const Tensor& t) { return cos(t); }, -3, 3},
      {"tanh", [](const Tensor& t) { return tanh(t); }, -2, 2},
      {"sigmoid", [](const Tensor& t) { return sigmoid(t); }, -3, 3},
      {"erf", [](const Tensor& t) { return erf(t); }, -2, 2},
      {"reciprocal", [](const Tensor& t) { return reciprocal(t); }, 0.5, 2},
      {"relu", [](const Tensor& t) { return relu(t); }, 0.1, 2},
      {"relu (negative side)", [](const Tensor& t) { return relu(t); }, -2, -0.1},
      {"sign", [](const Tensor& t) { return sign(t); }, 0.1, 2},
      {"gelu", [](const Tensor& t) { return gelu(t); }, -3, 3},
      {"gelu tanh", [](const Tensor& t) { return gelu(t, "tanh"); }, -3, 3},
      {"silu", [](const Tensor& t) { return silu(t); }, -3, 3},
      {"hardswish", [](const Tensor& t) { return hardswish(t); }, -2.9, 2.9},
      {"hardswish (outside)", [](const Tensor& t) { return hardswish(t); }, 3.1, 5},
      {"hardsigmoid", [](const Tensor& t) { return hardsigmoid(t); }, -2.9, 2.9},
      {"softplus", [](const Tensor& t) { return softplus(t, 2.0, 20); }, -3, 3},
      {"leaky_relu", [](const Tensor& t) { return leaky_relu(t, 0.1); }, -2, -0.1},
      {"elu", [](const Tensor& t) { return elu(t, 1.5); }, -2, -0.1},
      {"elu (positive)", [](const Tensor& t) { return elu(t, 1.5); }, 0.1, 2},
      {"clamp", [](const Tensor& t) { return clamp(t, -0.5, 0.5); }, -1, 1},
      {"pow 3", [](const Tensor& t) { return pow(t, 3.0); }, -2, 2},
      {"pow -0.5", [](const Tensor& t) { return pow(t, -0.5); }, 0.5, 2},
  };
  uint64_t seed = 10;
  for (const Case& c : cases) {
    Tensor x = leaf({2, 3}, device, c.lo, c.hi, seed++);
    if (std::string(c.name) == "clamp") {
      // Keep the points off the bounds themselves.
      NoGradGuard no_grad;
      x = from_vector<double>({-0.9, -0.3, 0.1, 0.45, 0.7, -0.6}, {2, 3}, {kFloat64, device});
      x.requires_grad_();
    }
    expect_gradcheck(c.name, [&](const TensorList& in) { return TensorList{c.fn(in[0])}; }, {x});
  }
  Tensor x = leaf({2, 3}, device, 0.5, 2, 99);
  for (auto& [name, fn] : std::vector<std::pair<std::string, Unary>>{
           {"tanh", [](const Tensor& t) { return tanh(t); }},
           {"exp", [](const Tensor& t) { return exp(t); }},
           {"log", [](const Tensor& t) { return log(t); }},
           {"gelu", [](const Tensor& t) { return gelu(t); }},
           {"gelu tanh", [](const Tensor& t) { return gelu(t, "tanh"); }}})
    expect_gradgradcheck(name, [fn = fn](const TensorList& in) { return TensorList{fn(in[0])}; }, {x});
}

DEVICE_TEST("autograd: gradcheck of the binary ops with broadcasting, and where") {
  Tensor a = leaf({2, 3}, device, 0.5, 2, 1), b = leaf({3}, device, 0.5, 2, 2);
  Tensor c = leaf({2, 1}, device, -2, -0.5, 3);
  auto both = [](std::function<Tensor(const Tensor&, const Tensor&)> f) {
    return [f](const TensorList& in) { return TensorList{f(in[0], in[1])}; };
  };
  expect_gradcheck("add alpha", both([](const Tensor& x, const Tensor& y) { return add(x, y, 2.5); }), {a, b});
  expect_gradcheck("sub alpha", both([](const Tensor& x, const Tensor& y) { return sub(x, y, 0.5); }), {a, c});
  expect_gradcheck("mul", both([](const Tensor& x, const Tensor& y) { return mul(x, y); }), {a, b});
  expect_gradcheck("div", both([](const Tensor& x, const Tensor& y) { return div(x, y); }), {a, c});
  expect_gradcheck("pow", both([](const Tensor& x, const Tensor& y) { return pow(x, y); }), {a, b});
  expect_gradcheck("maximum", both([](const Tensor& x, const Tensor& y) { return maximum(x, y); }), {a, b});
  expect_gradcheck("minimum", both([](const Tensor& x, const Tensor& y) { return minimum(x, y); }), {a, b});
  Tensor r = from_vector<double>({2.3, 5.1, -3.7, 7.9, 0.6, -1.2}, {2, 3}, {kFloat64, device});
  r.requires_grad_();
  Tensor m = from_vector<double>({1.5, 2.5, 1.75}, {3}, {kFloat64, device});
  m.requires_grad_();
  expect_gradcheck("remainder", both([](const Tensor& x, const Tensor& y) { return remainder(x, y); }), {r, m});
  expect_gradcheck("div floor (zero)", both([](const Tensor& x, const Tensor& y) { return div(x, y, RoundingMode::Floor); }), {r, m});
  expect_gradcheck("mul by a number", [](const TensorList& in) { return TensorList{mul(in[0], 3.0)}; }, {a});
  Tensor cond = gt(from_vector<double>({1, -1, 1}, {3}, {kFloat64, device}), 0.0);
  expect_gradcheck("where", both([cond](const Tensor& x, const Tensor& y) { return where(cond, x, y); }), {a, b});
  expect_gradcheck("masked_fill", [cond](const TensorList& in) { return TensorList{masked_fill(in[0], cond, 2.0)}; }, {a});
  expect_gradgradcheck("mul", both([](const Tensor& x, const Tensor& y) { return mul(x, y); }), {a, b});
  expect_gradgradcheck("div", both([](const Tensor& x, const Tensor& y) { return div(x, y); }), {a, c});
}

DEVICE_TEST("autograd: gradcheck of the reductions") {
  Tensor x = leaf({2, 3, 2}, device, -2, 2, 7);
  auto one = [](std::function<Tensor(const Tensor&)> f) {
    return [f](const TensorList& in) { return TensorList{f(in[0])}; };
  };
  expect_gradcheck("sum all", one([](const Tensor& t) { return sum(t); }), {x});
  expect_gradcheck("sum dims keepdim", one([](const Tensor& t) { return sum(t, {0, 2}, true); }), {x});
  expect_gradcheck("sum dim", one([](const Tensor& t) { return sum(t, {1}); }), {x});
  expect_gradcheck("mean", one([](const Tensor& t) { return mean(t, {-1}); }), {x});
  expect_gradcheck("amax", one([](const Tensor& t) { return amax(t, {1}); }), {x});
  expect_gradcheck("amin all", one([](const Tensor& t) { return amin(t); }), {x});
  expect_gradcheck("var", one([](const Tensor& t) { return var(t, {1}); }), {x});
  expect_gradcheck("std", one([](const Tensor& t) { return ember::std(t, {0, 1}, 0, true); }), {x});
  expect_gradcheck("norm 2", one([](const Tensor& t) { return norm(t, 2, {2}); }), {x});
  expect_gradcheck("norm 3", one([](const Tensor& t) { return norm(t, 3, {1}); }), {x});
  expect_gradcheck("logsumexp", one([](const Tensor& t) { return logsumexp(t, {1}); }), {x});
  expect_gradcheck("prod", one([](const Tensor& t) { return prod(t, {1}); }), {x});
  expect_gradcheck("prod all", one([](const Tensor& t) { return prod(t.slice(2, 0, 1)); }), {x});
  // Zeros: one zero in a row passes the product of the others; two give zero gradient.
  Tensor z = from_vector<double>({2, 0, 3, 0, 0, 5, 1, 4, 2}, {3, 3}, {kFloat64, device});
  z.requires_grad_();
  sum(prod(z, {1})).backward();
  check_equal_values(z.grad(), {0, 6, 0, 0, 0, 0, 8, 2, 4});
  expect_gradgradcheck("sum", one([](const Tensor& t) { return sum(mul(t, t), {1}); }), {x});
  expect_gradgradcheck("mean", one([](const Tensor& t) { return mean(mul(t, t)); }), {x});
  // Ties share the gradient evenly, as in PyTorch.
  Tensor tie = from_vector<double>({1, 3, 3}, {3}, {kFloat64, device});
  tie.requires_grad_();
  amax(tie).backward();
  check_equal_values(tie.grad(), {0, 0.5, 0.5});
}

DEVICE_TEST("autograd: gradcheck of the matrix products") {
  Tensor a = leaf({3, 4}, device, -1, 1, 1), b = leaf({4, 2}, device, -1, 1, 2), bias = leaf({2}, device, -1, 1, 3);
  Tensor batch = leaf({2, 3, 4}, device, -1, 1, 4), bb = leaf({2, 4, 2}, device, -1, 1, 5), v = leaf({4}, device, -1, 1, 6);
  auto two = [](std::function<Tensor(const Tensor&, const Tensor&)> f) {
    return [f](const TensorList& in) { return TensorList{f(in[0], in[1])}; };
  };
  expect_gradcheck("mm", two([](const Tensor& x, const Tensor& y) { return mm(x, y); }), {a, b});
  expect_gradcheck("bmm", two([](const Tensor& x, const Tensor& y) { return bmm(x, y); }), {batch, bb});
  expect_gradcheck("matmul broadcast", two([](const Tensor& x, const Tensor& y) { return matmul(x, y); }), {batch, b});
  expect_gradcheck("matmul batch x batch", two([](const Tensor& x, const Tensor& y) { return matmul(x, y); }), {a, bb});
  expect_gradcheck("matmul vector", two([](const Tensor& x, const Tensor& y) { return matmul(x, y); }), {a, v});
  expect_gradcheck("addmm", [](const TensorList& in) { return TensorList{addmm(in[2], in[0], in[1], 0.5, 2.0)}; },
                   {a, b, bias});
  Tensor w = leaf({2, 4}, device, -1, 1, 8);
  expect_gradcheck("linear", [](const TensorList& in) { return TensorList{linear(in[0], in[1], in[2])}; },
                   {batch, w, bias});
  expect_gradgradcheck("matmul", two([](const Tensor& x, const Tensor& y) { return matmul(x, y); }), {a, b});
}

DEVICE_TEST("autograd: gradcheck of views, joins, layout ops and copies") {
  Tensor x = leaf({2, 3, 4}, device);
  Tensor y = leaf({2, 3, 4}, device, -1, 1, 2);
  auto one = [](std::function<Tensor(const Tensor&)> f) {
    return [f](const TensorList& in) { return TensorList{f(in[0])}; };
  };
  expect_gradcheck("view", one([](const Tensor& t) { return t.view({6, 4}); }), {x});
  expect_gradcheck("reshape of a transpose (copies)", one([](const Tensor& t) { return reshape(t.transpose(0, 2), {-1}); }), {x});
  expect_gradcheck("flatten", one([](const Tensor& t) { return flatten(t, 1); }), {x});
  expect_gradcheck("permute", one([](const Tensor& t) { return permute(t, {2, 0, 1}); }), {x});
  expect_gradcheck("squeeze/unsqueeze", one([](const Tensor& t) { return squeeze(unsqueeze(t, 1)); }), {x});
  expect_gradcheck("expand", one([](const Tensor& t) { return expand(t.slice(1, 0, 1), {3, 2, 5, 4}); }), {x});
  expect_gradcheck("slice with step", one([](const Tensor& t) { return t.slice(2, 1, 4, 2); }), {x});
  expect_gradcheck("select", one([](const Tensor& t) { return t.select(1, -1); }), {x});
  expect_gradcheck("narrow", one([](const Tensor& t) { return narrow(t, 2, 1, 2); }), {x});
  expect_gradcheck("chunk", [](const TensorList& in) { return chunk(in[0], 2, 2); }, {x});
  expect_gradcheck("unbind", [](const TensorList& in) { return unbind(in[0], 1); }, {x});
  expect_gradcheck("cat", [](const TensorList& in) { return TensorList{cat({in[0], in[1]}, 1)}; }, {x, y});
  expect_gradcheck("stack", [](const TensorList& in) { return TensorList{stack({in[0], in[1]}, 0)}; }, {x, y});
  expect_gradcheck("pad", one([](const Tensor& t) { return pad(t, {1, 2, 0, 1}, 3.0); }), {x});
  expect_gradcheck("pad crop", one([](const Tensor& t) { return pad(t, {-1, 1}); }), {x});
  expect_gradcheck("flip", one([](const Tensor& t) { return flip(t, {0, 2}); }), {x});
  expect_gradcheck("roll", one([](const Tensor& t) { return roll(t, {1, -2}, {1, 2}); }), {x});
  expect_gradcheck("repeat", one([](const Tensor& t) { return repeat(t.slice(2, 0, 2), {2, 1, 1, 2}); }), {x});
  expect_gradcheck("tril", one([](const Tensor& t) { return tril(t); }), {x});
  expect_gradcheck("triu", one([](const Tensor& t) { return triu(t, 1); }), {x});
  expect_gradcheck("contiguous", one([](const Tensor& t) { return t.transpose(0, 1).contiguous(); }), {x});
  expect_gradcheck("clone", one([](const Tensor& t) { return t.clone(); }), {x});
  // Through float32 the central difference needs a step float32 can resolve.
  expect_gradcheck("to float32 and back", one([](const Tensor& t) { return t.to(kFloat32).to(kFloat64); }), {x},
                   {.eps = 1e-3});
  if (device.is_cuda())
    expect_gradcheck("to cpu", one([](const Tensor& t) { return t.to(Device::cpu()); }), {x});
}

DEVICE_TEST("autograd: gradcheck of the indexing ops and of max/min with indices") {
  Tensor x = leaf({3, 4}, device);
  Tensor src = leaf({2, 4}, device, -1, 1, 3);
  Tensor rows = from_vector<int64_t>({2, 0, 2}, {3}, {kInt64, device});  // a repeated row accumulates
  Tensor idx = from_vector<int64_t>({0, 2, 1, 0, 1, 1, 0, 2}, {2, 4}, {kInt64, device});
  auto one = [](std::function<Tensor(const Tensor&)> f) {
    return [f](const TensorList& in) { return TensorList{f(in[0])}; };
  };
  expect_gradcheck("index_select", one([&](const Tensor& t) { return index_select(t, 0, rows); }), {x});
  expect_gradcheck("index_select dim 1", one([&](const Tensor& t) { return index_select(t, 1, rows); }), {x});
  expect_gradcheck("gather", one([&](const Tensor& t) { return gather(t, 0, idx); }), {x});
  expect_gradcheck("scatter", [&](const TensorList& in) { return TensorList{scatter(in[0], 0, idx.slice(0, 0, 1), in[1])}; },
                   {x, src});
  expect_gradcheck("scatter_add", [&](const TensorList& in) { return TensorList{scatter_add(in[0], 0, idx, in[1])}; },
                   {x, src});
  expect_gradcheck("max(dim)", one([](const Tensor& t) { return max(t, 1).values; }), {x});
  expect_gradcheck("min(dim, keepdim)", one([](const Tensor& t) { return min(t, 0, true).values; }), {x});
  expect_gradgradcheck("relu", one([](const Tensor& t) { return mul(relu(t), t); }), {x});
  expect_gradgradcheck("gather", one([&](const Tensor& t) { return mul(gather(t, 0, idx), gather(t, 0, idx)); }), {x});
  expect_gradgradcheck("index_select", one([&](const Tensor& t) {
                         return mul(index_select(t, 0, rows), index_select(t, 0, rows));
                       }), {x});
}

TEST_CASE("autograd: the registry marks differentiable ops") {
  const OpRegistry& r = OpRegistry::get();
  for (const char* name : {"add", "mul", "div", "exp", "tanh", "relu", "sum", "mean", "matmul", "linear", "view",
                           "slice", "cat", "pad", "where", "clone", "to", "as_strided", "add_", "mul_", "copy_",
                           "clamp_"}) {
    INFO(name);
    REQUIRE(r.find(name) != nullptr);
    CHECK(r.find(name)->backward);
  }
  for (const char* name : {"index_select", "gather", "scatter_add", "max", "min"}) {
    INFO(name);
    CHECK(r.find(name)->backward);
  }
  for (const char* name : {"eq", "argmax", "isnan", "randn", "zeros"}) {
    INFO(name);
    CHECK_FALSE(r.find(name)->backward);
  }
}

DEVICE_TEST("autograd: a contiguous leaf's gradient is contiguous, whatever layout its backward gives") {
  // sum's gradient is a broadcast (stride 0), a matrix product's weight gradient a transpose:
  // both are laid out as the leaf once accumulated, so the fused optimizer steps apply.
  Tensor x = leaf({3, 4}, device);
  sum(x).backward();
  CHECK(x.grad().is_contiguous());
  check_equal_values(x.grad(), std::vector<double>(12, 1.0));
  nn::GPT gpt({.vocab_size = 50, .block_size = 8, .layers = 1, .heads = 2, .width = 8, .dropout = 0});
  gpt.to(device);
  const Tensor tokens = randint(0, 50, {2, 8}, {kInt64, device});
  sum(gpt.forward(tokens)).backward();
  for (const Tensor& p : gpt.parameters()) {
    REQUIRE(p.grad().defined());
    CHECK(p.grad().is_contiguous());
  }
  if (device.is_cuda()) CHECK(nn::fused::applies(gpt.parameters()));
}
