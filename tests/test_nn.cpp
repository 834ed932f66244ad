// nn: losses against float64 references and gradcheck, modules (names, init, state dicts,
// device moves), optimizers against PyTorch's update rules written out by hand, the .npy
// reader (the digits data and malformed files).
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

#include "tests/harness.h"

using namespace ember;
using namespace ember::test;

namespace {

std::string data_dir() { return std::string(EMBER_SOURCE_DIR) + "/examples/data"; }

std::string write_temp(const std::string& name, const std::string& bytes) {
  std::string path = "/tmp/ember_test_" + name;
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

std::string npy_bytes(const std::string& header_dict, size_t data_bytes) {
  std::string header = header_dict;
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out = std::string("\x93NUMPY\x01\x00", 8);
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  return out + header + std::string(data_bytes, '\x01');
}

}  // namespace

TEST_CASE("npy: the digits data loads with its shapes and dtypes") {
  Tensor images = load_npy(data_dir() + "/digits_images.npy");
  Tensor labels = load_npy(data_dir() + "/digits_labels.npy");
  CHECK(images.sizes() == Shape{1797, 8, 8});
  CHECK(images.dtype() == kUInt8);
  CHECK(labels.sizes() == Shape{1797});
  CHECK(labels.dtype() == kInt64);
  CHECK(amax(images).item<int64_t>() == 16);
  CHECK(amin(labels).item<int64_t>() == 0);
  CHECK(amax(labels).item<int64_t>() == 9);
  // scikit-learn's load_digits starts with a 0, 1, 2, 3.
  check_equal_values(labels.slice(0, 0, 4), {0, 1, 2, 3});
}

TEST_CASE("npy: malformed files give clear errors") {
  check_error([] { load_npy("/nonexistent/x.npy"); }, ErrorCode::Io, "cannot open /nonexistent/x.npy");
  check_error([] { load_npy(write_temp("magic.npy", "hello world, not numpy")); }, ErrorCode::InvalidModel, "bad magic");
  const std::string ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  CHECK(load_npy(write_temp("ok.npy", npy_bytes(ok, 24))).sizes() == Shape{2, 3});
  check_error([&] { load_npy(write_temp("short.npy", npy_bytes(ok, 20))); }, ErrorCode::InvalidModel,
              "needs 24 bytes of data but the file holds 20");
  check_error([] { load_npy(write_temp("dtype.npy", npy_bytes("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8))); },
              ErrorCode::InvalidModel, "unsupported dtype '>f4'");
  check_error([] { load_npy(write_temp("fortran.npy", npy_bytes("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", 8))); },
              ErrorCode::InvalidModel, "Fortran-ordered");
  check_error([] { load_npy(write_temp("huge.npy", npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", 8))); },
              ErrorCode::InvalidModel, "overflows");
  std::string truncated = npy_bytes(ok, 24).substr(0, 9);
  check_error([&] { load_npy(write_temp("trunc.npy", truncated)); }, ErrorCode::InvalidModel, "");
}

DEVICE_TEST("nn: cross_entropy and log_softmax match float64 references and gradcheck") {
  Ref logits_ref = random_ref({4, 5}, -3, 3, 21);
  Tensor logits = from_ref(logits_ref, kFloat64, device);
  Tensor target = from_vector<int64_t>({1, 0, 4, 2}, {4}, {kInt64, device});
  // Reference: mean over rows of logsumexp(row) - row[target].
  double expected = 0;
  const int64_t t[4] = {1, 0, 4, 2};
  for (int r = 0; r < 4; ++r) {
    double m = -1e300, s = 0;
    for (int c = 0; c < 5; ++c) m = std::max(m, logits_ref.v[r * 5 + c]);
    for (int c = 0; c < 5; ++c) s += std::exp(logits_ref.v[r * 5 + c] - m);
    expected += (m + std::log(s) - logits_ref.v[r * 5 + t[r]]) / 4;
  }
  CHECK(nn::cross_entropy(logits, target).item<double>() == doctest::Approx(expected).epsilon(1e-12));
  // ignore_index drops a row from the sum and the count.
  Tensor ignored = from_vector<int64_t>({1, -100, 4, 2}, {4}, {kInt64, device});
  CHECK(nn::cross_entropy(logits, ignored, nn::Reduction::Sum).item<double>() <
        nn::cross_entropy(logits, target, nn::Reduction::Sum).item<double>());
  check_close(sum(nn::softmax(logits, 1), {1}), to_ref(ones({4}, {kFloat64})), kFloat64);
  logits.requires_grad_();
  for (double smoothing : {0.0, 0.1}) {
    std::string err = gradcheck(
        [&](const TensorList& in) { return TensorList{nn::cross_entropy(in[0], target, nn::Reduction::Mean, -100, smoothing)}; },
        {logits});
    CHECK_MESSAGE(err.empty(), err);
  }
  std::string err = gradgradcheck([](const TensorList& in) { return TensorList{nn::softmax(in[0], 1)}; }, {logits});
  CHECK_MESSAGE(err.empty(), err);
  Tensor bad = from_vector<int64_t>({1, 0, 5, 2}, {4}, {kInt64, device});
  if (device.is_cpu()) {
    check_error([&] { nn::cross_entropy(logits, bad); }, ErrorCode::InvalidArgument, "outside [0, 5): got 5");
  } else {
    // No host sync per step on CUDA: the loss is NaN and the next call reports the target.
    CHECK(std::isnan(nn::cross_entropy(logits.detach(), bad).item<double>()));
    check_error([&] { nn::cross_entropy(logits, target); }, ErrorCode::InvalidArgument,
                "an earlier call on cuda:0 had a target outside [0, 5): got 5");
    CHECK(std::isfinite(nn::cross_entropy(logits, target).item<double>()));  // reported once
  }
  check_error([&] { nn::cross_entropy(logits, ones({4}, {kFloat32, device})); }, ErrorCode::ShapeMismatch,
              "probability targets must have the logits' shape [4, 5], got [4]");
  check_error([&] { nn::cross_entropy(logits, ones({4}, {kInt32, device})); }, ErrorCode::InvalidArgument,
              "expected int64 class indices");
}

namespace {

void check_values(const std::vector<double>& got, const std::vector<double>& want, double rtol = 1e-12) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("index ", i);
    CHECK(got[i] == doctest::Approx(want[i]).epsilon(rtol).scale(1e-300));
  }
}

// |got − want| ≤ tol·(1 + |want|): for reduced-precision results whose small entries have no
// meaningful relative error.
void check_near(const std::vector<double>& got, const std::vector<double>& want, double tol) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("index ", i, ": got ", got[i], ", want ", want[i]);
    CHECK(std::abs(got[i] - want[i]) <= tol * (1 + std::abs(want[i])));
  }
}

}  // namespace

DEVICE_TEST("nn: fused cross_entropy with weight, ignore_index and smoothing against float64 sums") {
  Ref x_ref = random_ref({6, 7}, -4, 4, 31);
  Ref w_ref = random_ref({7}, 0.2, 2, 32);
  const std::vector<int64_t> t = {3, -1, 0, 6, -1, 2};
  Tensor x = from_ref(x_ref, kFloat64, device);
  Tensor w = from_ref(w_ref, kFloat64, device);
  Tensor target = from_vector<int64_t>(t, {6}, {kInt64, device});
  const double eps = 0.15;
  // PyTorch's rule: loss_i = (1−ε)·w_y·(lse − x_y) + ε/C·Σ_c w_c·(lse − x_c); the mean divides
  // the summed row losses by the summed weights of the non-ignored targets.
  std::vector<double> rows(6, 0.0);
  double loss_sum = 0, weight_sum = 0;
  for (int i = 0; i < 6; ++i) {
    if (t[i] == -1) continue;
    double m = -1e300, s = 0;
    for (int c = 0; c < 7; ++c) m = std::max(m, x_ref.v[i * 7 + c]);
    for (int c = 0; c < 7; ++c) s += std::exp(x_ref.v[i * 7 + c] - m);
    const double lse = m + std::log(s);
    double smooth = 0;
    for (int c = 0; c < 7; ++c) smooth += w_ref.v[c] * (lse - x_ref.v[i * 7 + c]);
    rows[i] = (1 - eps) * w_ref.v[t[i]] * (lse - x_ref.v[i * 7 + t[i]]) + eps / 7 * smooth;
    loss_sum += rows[i];
    weight_sum += w_ref.v[t[i]];
  }
  using R = nn::Reduction;
  check_values(to_ref(nn::cross_entropy(x, target, R::None, -1, eps, w)).v, rows, 1e-12);
  CHECK(nn::cross_entropy(x, target, R::Sum, -1, eps, w).item<double>() == doctest::Approx(loss_sum).epsilon(1e-12));
  CHECK(nn::cross_entropy(x, target, R::Mean, -1, eps, w).item<double>() ==
        doctest::Approx(loss_sum / weight_sum).epsilon(1e-12));
  // Unweighted with ignored rows: the mean is over the 4 counted rows, smoothing term included.
  Tensor unweighted = nn::cross_entropy(x, target, R::None, -1, eps);
  CHECK(nn::cross_entropy(x, target, R::Mean, -1, eps).item<double>() ==
        doctest::Approx(sum(unweighted).item<double>() / 4).epsilon(1e-12));
  x.requires_grad_();
  for (R r : {R::None, R::Sum, R::Mean}) {
    std::string err = gradcheck(
        [&](const TensorList& in) { return TensorList{nn::cross_entropy(in[0], target, r, -1, eps, w)}; }, {x});
    CHECK_MESSAGE(err.empty(), err);
  }
  std::string err = gradgradcheck(
      [&](const TensorList& in) { return TensorList{nn::cross_entropy(in[0], target, R::Mean, -1, eps, w)}; }, {x});
  CHECK_MESSAGE(err.empty(), err);
  // Reduced precision: float32 and the half types against the float64 result.
  for (auto [dt, tol] : std::vector<std::pair<DType, double>>{{kFloat32, 1e-5}, {kFloat16, 2e-3}, {kBFloat16, 1e-2}}) {
    const DType dtype = dt;  // clang 14 lambdas cannot capture structured bindings
    INFO(dtype);
    Tensor xl = from_ref(x_ref, dt, device);
    xl.requires_grad_();
    Tensor loss = nn::cross_entropy(xl, target, R::Mean, -1, eps, w.to(dt));
    CHECK(loss.dtype() == dt);
    CHECK(loss.item<double>() == doctest::Approx(loss_sum / weight_sum).epsilon(tol));
    loss.backward();
    Tensor x64 = x.detach();
    x64.requires_grad_();
    nn::cross_entropy(x64, target, R::Mean, -1, eps, w).backward();
    check_near(to_ref(xl.grad().to(kFloat64)).v, to_ref(x64.grad()).v, tol);
  }
}

TEST_CASE("nn: modules name parameters like PyTorch, initialise in PyTorch's bounds, and round-trip state") {
  manual_seed(0);
  nn::Sequential model({std::make_shared<nn::Linear>(64, 32), std::make_shared<nn::ReLU>(),
                        std::make_shared<nn::Linear>(32, 10, /*bias=*/false)});
  std::vector<std::string> names;
  for (auto& [name, p] : model.named_parameters()) names.push_back(name);
  CHECK(names == std::vector<std::string>{"0.weight", "0.bias", "2.weight"});
  Tensor w = model.parameters()[0];
  CHECK(w.sizes() == Shape{32, 64});
  CHECK(w.requires_grad());
  // kaiming_uniform(a = √5): U(-1/√fan_in, 1/√fan_in); the draw fills most of the range.
  const double bound = 1 / std::sqrt(64.0);
  CHECK(amax(abs(w)).item<double>() <= bound);
  CHECK(amax(abs(w)).item<double>() > 0.95 * bound);
  auto state = model.state_dict();
  CHECK(state.size() == 3);
  nn::Sequential other({std::make_shared<nn::Linear>(64, 32), std::make_shared<nn::ReLU>(),
                        std::make_shared<nn::Linear>(32, 10, false)});
  other.load_state_dict(state);
  Tensor x = randn({3, 64});
  check_close(other(x), to_ref(model(x)), kFloat32);
  state.erase("2.weight");
  check_error([&] { other.load_state_dict(state); }, ErrorCode::InvalidArgument, "missing key \"2.weight\"");
  state["2.weight"] = zeros({10, 31});
  check_error([&] { other.load_state_dict(state); }, ErrorCode::ShapeMismatch, "\"2.weight\" has shape [10, 31]");
  // zero_grad frees gradients.
  sum(model(x)).backward();
  CHECK(model.parameters()[0].grad().defined());
  model.zero_grad();
  CHECK_FALSE(model.parameters()[0].grad().defined());
}

namespace {

// One parameter p with gradients g_t = 2·p_t (the gradient of Σ p²), stepped `steps` times.
std::vector<double> run_optimizer(nn::Optimizer& opt, const Tensor& p, int steps) {
  for (int s = 0; s < steps; ++s) {
    opt.zero_grad();
    sum(mul(p, p)).backward();
    opt.step();
  }
  return to_ref(p).v;
}

}  // namespace

DEVICE_TEST("nn: SGD and Adam follow PyTorch's update rules") {
  const std::vector<double> start = {0.5, -1.25, 2.0};
  auto param = [&] {
    Tensor p = from_vector<double>(start, {3}, {kFloat64, device});
    p.requires_grad_();
    return p;
  };
  const int steps = 5;
  SUBCASE("SGD with momentum, dampening, weight decay") {
    for (bool nesterov : {false, true}) {
      nn::SGDOptions o{.lr = 0.1, .momentum = 0.9, .dampening = nesterov ? 0.0 : 0.2, .weight_decay = 0.01,
                       .nesterov = nesterov};
      Tensor p = param();
      nn::SGD opt({p}, o);
      std::vector<double> got = run_optimizer(opt, p, steps);
      for (size_t i = 0; i < start.size(); ++i) {
        double x = start[i], buf = 0;
        for (int s = 0; s < steps; ++s) {
          double d = 2 * x + o.weight_decay * x;
          buf = s == 0 ? d : o.momentum * buf + (1 - o.dampening) * d;
          d = o.nesterov ? d + o.momentum * buf : buf;
          x -= o.lr * d;
        }
        CHECK(got[i] == doctest::Approx(x).epsilon(1e-12));
      }
    }
  }
  SUBCASE("Adam, AdamW and amsgrad") {
    for (int variant = 0; variant < 3; ++variant) {
      nn::AdamOptions o;
      o.lr = 0.05;
      o.weight_decay = 0.1;
      o.decoupled_weight_decay = variant == 1;
      o.amsgrad = variant == 2;
      Tensor p = param();
      nn::Adam opt({p}, o);
      std::vector<double> got = run_optimizer(opt, p, steps);
      for (size_t i = 0; i < start.size(); ++i) {
        double x = start[i], m = 0, v = 0, vmax = 0;
        for (int s = 1; s <= steps; ++s) {
          double g = 2 * x;
          if (o.decoupled_weight_decay) x *= 1 - o.lr * o.weight_decay;
          else g += o.weight_decay * x;
          m = o.beta1 * m + (1 - o.beta1) * g;
          v = o.beta2 * v + (1 - o.beta2) * g * g;
          vmax = std::max(vmax, v);
          double bc1 = 1 - std::pow(o.beta1, s), bc2 = 1 - std::pow(o.beta2, s);
          double denom = std::sqrt(o.amsgrad ? vmax : v) / std::sqrt(bc2) + o.eps;
          x -= o.lr / bc1 * m / denom;
        }
        INFO("variant ", variant, " element ", i);
        CHECK(got[i] == doctest::Approx(x).epsilon(1e-12));
      }
    }
  }
  check_error([&] { nn::SGD({from_vector<double>(start, {3})}, {}); }, ErrorCode::InvalidArgument,
              "is not a leaf tensor that requires grad");
}

DEVICE_TEST("nn: the other losses match float64 references and gradcheck") {
  Ref a_ref = random_ref({2, 3}, -2, 2, 31), b_ref = random_ref({2, 3}, -2, 2, 32);
  Tensor a = from_ref(a_ref, kFloat64, device), b = from_ref(b_ref, kFloat64, device);
  double l1 = 0, smooth = 0, mse = 0, bce = 0;
  for (size_t i = 0; i < 6; ++i) {
    double d = std::fabs(a_ref.v[i] - b_ref.v[i]);
    l1 += d / 6;
    mse += d * d / 6;
    smooth += (d < 0.5 ? d * d / (2 * 0.5) : d - 0.25) / 6;
    double x = a_ref.v[i], y = (b_ref.v[i] + 2) / 4;  // targets in [0, 1]
    bce += -(y * std::log(1 / (1 + std::exp(-x))) + (1 - y) * std::log(1 - 1 / (1 + std::exp(-x)))) / 6;
  }
  Tensor y01 = div(add(b, 2.0), 4.0);
  CHECK(nn::l1_loss(a, b).item<double>() == doctest::Approx(l1).epsilon(1e-12));
  CHECK(nn::mse_loss(a, b).item<double>() == doctest::Approx(mse).epsilon(1e-12));
  CHECK(nn::smooth_l1_loss(a, b, nn::Reduction::Mean, 0.5).item<double>() == doctest::Approx(smooth).epsilon(1e-12));
  CHECK(nn::binary_cross_entropy_with_logits(a, y01).item<double>() == doctest::Approx(bce).epsilon(1e-12));
  // Large logits stay finite.
  Tensor big = from_vector<double>({800, -800}, {2}, {kFloat64, device});
  CHECK(std::isfinite(nn::binary_cross_entropy_with_logits(big, from_vector<double>({0, 1}, {2}, {kFloat64, device})).item<double>()));
  a.requires_grad_();
  for (auto& [name, fn] : std::vector<std::pair<std::string, std::function<Tensor(const Tensor&)>>>{
           {"l1", [&](const Tensor& x) { return nn::l1_loss(x, b); }},
           {"mse", [&](const Tensor& x) { return nn::mse_loss(x, b, nn::Reduction::Sum); }},
           {"smooth_l1", [&](const Tensor& x) { return nn::smooth_l1_loss(x, b, nn::Reduction::Mean, 0.5); }},
           {"bce_with_logits", [&](const Tensor& x) { return nn::binary_cross_entropy_with_logits(x, y01); }},
           {"nll", [&](const Tensor& x) {
              return nn::nll_loss(nn::log_softmax(x, 1), from_vector<int64_t>({2, 0}, {2}, {kInt64, device}));
            }}}) {
    const std::string& case_name = name;  // clang 14 lambdas cannot capture structured bindings
    INFO(case_name);
    std::string err = gradcheck([fn = fn](const TensorList& in) { return TensorList{fn(in[0])}; }, {a});
    CHECK_MESSAGE(err.empty(), err);
  }
}

DEVICE_TEST("nn: dropout is reproducible from the seed and scales what it keeps") {
  Tensor x = ones({1000}, {kFloat32, device});
  manual_seed(5);
  Tensor a = nn::dropout(x, 0.25, true);
  manual_seed(5);
  Tensor b = nn::dropout(x, 0.25, true);
  check_close(a, to_ref(b), kFloat32, 0);
  const double kept = sum(ne(a, 0.0)).item<double>();
  CHECK(kept > 680);
  CHECK(kept < 820);
  CHECK(amax(a).item<double>() == doctest::Approx(1 / 0.75));
  CHECK(nn::dropout(x, 0.25, false).is_same(x));
  nn::Dropout layer(0.5);
  layer.eval();
  CHECK(layer(x).is_same(x));
  check_error([&] { nn::dropout(x, 1.5, true); }, ErrorCode::InvalidArgument, "probability must be in [0, 1]");
}

TEST_CASE("nn: Embedding looks up rows and keeps padding rows at zero gradient") {
  manual_seed(2);
  nn::Embedding emb(5, 3, /*padding_idx=*/1);
  check_equal_values(emb.weight().select(0, 1), {0, 0, 0});
  Tensor idx = from_vector<int64_t>({0, 1, 4, 0}, {2, 2});
  Tensor out = emb(idx);
  CHECK(out.sizes() == Shape{2, 2, 3});
  check_close(out.select(0, 1).select(0, 0), to_ref(emb.weight().select(0, 4)), kFloat32);
  sum(out).backward();
  Tensor g = emb.weight().grad();
  check_equal_values(g.select(1, 0), {2, 0, 0, 0, 1});  // row 0 twice, row 1 is padding, row 4 once
  check_error([&] { emb(from_vector<double>({0}, {1})); }, ErrorCode::DTypeMismatch, "expected int64 or int32");
}

TEST_CASE("nn: RMSprop follows PyTorch's update rule; clipping; schedules") {
  const std::vector<double> start = {0.5, -1.25, 2.0};
  for (int variant = 0; variant < 3; ++variant) {
    nn::RMSpropOptions o;
    o.lr = 0.01;
    o.weight_decay = 0.1;
    o.centered = variant >= 1;
    o.momentum = variant == 2 ? 0.9 : 0;
    Tensor p = from_vector<double>(start, {3}, {kFloat64});
    p.requires_grad_();
    nn::RMSprop opt({p}, o);
    for (int s = 0; s < 4; ++s) {
      opt.zero_grad();
      sum(mul(p, p)).backward();
      opt.step();
    }
    for (size_t i = 0; i < 3; ++i) {
      double x = start[i], sq = 0, ga = 0, buf = 0;
      for (int s = 0; s < 4; ++s) {
        double g = 2 * x + o.weight_decay * x;
        sq = o.alpha * sq + (1 - o.alpha) * g * g;
        double avg;
        if (o.centered) {
          ga = o.alpha * ga + (1 - o.alpha) * g;
          avg = std::sqrt(sq - ga * ga) + o.eps;
        } else {
          avg = std::sqrt(sq) + o.eps;
        }
        if (o.momentum > 0) {
          buf = o.momentum * buf + g / avg;
          x -= o.lr * buf;
        } else {
          x -= o.lr * g / avg;
        }
      }
      INFO("variant ", variant);
      CHECK(to_ref(p).v[i] == doctest::Approx(x).epsilon(1e-12));
    }
  }

  // clip_grad_norm_: norm 5 clipped to 1.
  Tensor w = from_vector<double>({3, 4}, {2});
  w.requires_grad_();
  w.set_grad(from_vector<double>({3, 4}, {2}));
  CHECK(nn::clip_grad_norm_({w}, 1.0) == doctest::Approx(5));
  check_close(w.grad(), to_ref(from_vector<double>({0.6, 0.8}, {2})), kFloat64, 10);
  nn::clip_grad_value_({w}, 0.7);
  check_close(w.grad(), to_ref(from_vector<double>({0.6, 0.7}, {2})), kFloat64, 10);

  Tensor q = zeros({1});
  q.requires_grad_();
  auto lr_after = [&](auto make, int steps) {
    nn::SGD opt({q}, {.lr = 0.1});
    auto sched = make(opt);
    for (int s = 0; s < steps; ++s) sched.step();
    return opt.lr();
  };
  CHECK(lr_after([](nn::Optimizer& o) { return nn::StepLR(o, 3, 0.5); }, 7) == doctest::Approx(0.025));
  CHECK(lr_after([](nn::Optimizer& o) { return nn::MultiStepLR(o, {2, 5}, 0.1); }, 5) == doctest::Approx(0.001));
  CHECK(lr_after([](nn::Optimizer& o) { return nn::ExponentialLR(o, 0.9); }, 2) == doctest::Approx(0.081));
  CHECK(lr_after([](nn::Optimizer& o) { return nn::CosineAnnealingLR(o, 10, 0.0); }, 5) == doctest::Approx(0.05));
  CHECK(lr_after([](nn::Optimizer& o) { return nn::LinearLR(o, 0.5, 1.0, 4); }, 0) == doctest::Approx(0.05));
  CHECK(lr_after([](nn::Optimizer& o) { return nn::LinearLR(o, 0.5, 1.0, 4); }, 2) == doctest::Approx(0.075));
  // OneCycleLR(max 0.1, 10 steps): 0.004 at the start, 0.052 after one step, 0.1 at the peak
  // (step 2), 0.1 / 25 / 1e4 at the last step.
  CHECK(lr_after([](nn::Optimizer& o) { return nn::OneCycleLR(o, 0.1, 10); }, 0) == doctest::Approx(0.004));
  CHECK(lr_after([](nn::Optimizer& o) { return nn::OneCycleLR(o, 0.1, 10); }, 1) == doctest::Approx(0.052));
  CHECK(lr_after([](nn::Optimizer& o) { return nn::OneCycleLR(o, 0.1, 10); }, 2) == doctest::Approx(0.1));
  CHECK(lr_after([](nn::Optimizer& o) { return nn::OneCycleLR(o, 0.1, 10); }, 9) == doctest::Approx(4e-7));
}

DEVICE_TEST("nn: fused CUDA optimizer steps match the op-by-op steps on the CPU") {
  // 53 float32 parameters of mixed sizes (more than one launch's 48), gradients set directly.
  std::vector<Shape> shapes;
  for (int i = 0; i < 52; ++i) shapes.push_back({1 + (i * 37) % 97});
  shapes.push_back({300, 257});
  auto make = [&](Device d) {
    std::vector<Tensor> ps;
    for (size_t i = 0; i < shapes.size(); ++i) {
      Tensor p = from_ref(random_ref(shapes[i], -1, 1, 100 + i), kFloat32, d);
      p.requires_grad_();
      ps.push_back(p);
    }
    return ps;
  };
  auto set_grads = [&](const std::vector<Tensor>& ps, int step) {
    for (size_t i = 0; i < ps.size(); ++i) {
      if (i == 3 && step == 1) {
        ps[i].set_grad(Tensor());  // a parameter without a gradient this step is skipped
        continue;
      }
      ps[i].set_grad(from_ref(random_ref(shapes[i], -1, 1, 1000 * step + i), kFloat32, ps[i].device()));
    }
  };
  auto run = [&](auto make_opt, Device d) {
    std::vector<Tensor> ps = make(d);
    auto opt = make_opt(ps);
    for (int step = 0; step < 3; ++step) {
      set_grads(ps, step);
      opt.step();
    }
    return ps;
  };
  auto compare = [&](const std::vector<Tensor>& got, const std::vector<Tensor>& want) {
    for (size_t i = 0; i < got.size(); ++i) {
      INFO("parameter ", i);
      check_close(got[i], to_ref(want[i]), kFloat32, 4);
    }
  };
  for (bool nesterov : {false, true}) {
    auto sgd = [&](std::vector<Tensor> ps) {
      return nn::SGD(ps, {.lr = 0.1, .momentum = 0.9, .dampening = 0, .weight_decay = 0.01, .nesterov = nesterov});
    };
    compare(run(sgd, device), run(sgd, Device::cpu()));
  }
  for (int variant = 0; variant < 3; ++variant) {
    auto adam = [&](std::vector<Tensor> ps) {
      nn::AdamOptions o;
      o.lr = 0.01;
      o.weight_decay = 0.05;
      o.decoupled_weight_decay = variant == 1;
      o.amsgrad = variant == 2;
      return nn::Adam(ps, o);
    };
    compare(run(adam, device), run(adam, Device::cpu()));
  }
  for (int variant = 0; variant < 3; ++variant) {
    auto rmsprop = [&](std::vector<Tensor> ps) {
      return nn::RMSprop(ps, {.lr = 0.01, .weight_decay = 0.05, .momentum = variant == 2 ? 0.9 : 0.0,
                              .centered = variant >= 1});
    };
    compare(run(rmsprop, device), run(rmsprop, Device::cpu()));
  }
  if (device.is_cuda()) CHECK(nn::fused::applies(make(device)) == false);  // no gradients yet
}

// ---- against PyTorch ------------------------------------------------------------------------------
// tests/fixtures/torch_reference.txt was written by tools/make_torch_fixtures.py with PyTorch
// 2.11 (float64): optimizer trajectories, learning-rate schedules, losses and their gradients.

namespace {

std::map<std::string, std::vector<double>> torch_reference() {
  std::map<std::string, std::vector<double>> out;
  std::ifstream f(std::string(EMBER_SOURCE_DIR) + "/tests/fixtures/torch_reference.txt");
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream in(line);
    std::string key;
    in >> key;
    double v;
    while (in >> v) out[key].push_back(v);
  }
  return out;
}

}  // namespace

TEST_CASE("nn: optimizers reproduce PyTorch's update sequences") {
  auto ref = torch_reference();
  REQUIRE(ref.size() > 60);
  auto run = [&](const std::string& name, auto make) {
    Tensor p = from_vector<double>({0.5, -1.25, 2.0}, {3});
    p.requires_grad_();
    auto opt = make(std::vector<Tensor>{p});
    for (int s = 0; s < 5; ++s) {
      opt.zero_grad();
      sum(mul(p, p)).backward();
      opt.step();
      INFO(name, " step ", s);
      check_values(to_ref(p).v, ref.at("optim." + name + "." + std::to_string(s)));
    }
  };
  run("sgd", [](auto ps) { return nn::SGD(ps, {.lr = 0.1}); });
  run("sgd_momentum", [](auto ps) { return nn::SGD(ps, {.lr = 0.1, .momentum = 0.9, .dampening = 0.2, .weight_decay = 0.01}); });
  run("sgd_nesterov",
      [](auto ps) { return nn::SGD(ps, {.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01, .nesterov = true}); });
  run("adam", [](auto ps) { return nn::Adam(ps, {.lr = 0.05, .weight_decay = 0.1}); });
  run("adamw", [](auto ps) { return nn::Adam(ps, nn::adamw_options(0.05, 0.1)); });
  run("adam_amsgrad", [](auto ps) { return nn::Adam(ps, {.lr = 0.05, .weight_decay = 0.1, .amsgrad = true}); });
  run("rmsprop", [](auto ps) { return nn::RMSprop(ps, {.lr = 0.01, .weight_decay = 0.1}); });
  run("rmsprop_centered_momentum", [](auto ps) {
    return nn::RMSprop(ps, {.lr = 0.01, .weight_decay = 0.1, .momentum = 0.9, .centered = true});
  });
}

TEST_CASE("nn: learning-rate schedules reproduce PyTorch's") {
  auto ref = torch_reference();
  auto run = [&](const std::string& name, auto make) {
    Tensor q = zeros({1});
    q.requires_grad_();
    nn::SGD opt({q}, {.lr = 0.1});
    auto sched = make(opt);
    std::vector<double> lrs{opt.lr()};
    for (int s = 0; s < 9; ++s) {
      sched.step();
      lrs.push_back(opt.lr());
    }
    const std::string& case_name = name;  // clang 14 lambdas cannot capture structured bindings
    INFO(case_name);
    check_values(lrs, ref.at("lr." + name), 1e-12);
  };
  run("step", [](nn::Optimizer& o) { return nn::StepLR(o, 3, 0.5); });
  run("multistep", [](nn::Optimizer& o) { return nn::MultiStepLR(o, {2, 5}, 0.1); });
  run("exponential", [](nn::Optimizer& o) { return nn::ExponentialLR(o, 0.9); });
  run("cosine", [](nn::Optimizer& o) { return nn::CosineAnnealingLR(o, 10); });
  run("linear", [](nn::Optimizer& o) { return nn::LinearLR(o, 0.5, 1.0, 4); });
  run("onecycle", [](nn::Optimizer& o) { return nn::OneCycleLR(o, 0.1, 10); });
}

DEVICE_TEST("nn: cross_entropy and nll_loss reproduce PyTorch's values and gradients") {
  auto ref = torch_reference();
  auto tensor_of = [&](const std::string& key, const Shape& shape, DType dt = kFloat64) {
    Ref r{shape, ref.at(key)};
    return from_ref(r, dt, device);
  };
  Tensor weight = tensor_of("weight", {5});
  Tensor probs = tensor_of("probs", {4, 5});
  Tensor target = from_vector<int64_t>({2, 0, 1, 3}, {4}, {kInt64, device});
  Tensor ignored = from_vector<int64_t>({2, -100, 1, 3}, {4}, {kInt64, device});
  using R = nn::Reduction;
  std::vector<std::pair<std::string, std::function<Tensor(const Tensor&)>>> cases = {
      {"ce", [&](const Tensor& x) { return nn::cross_entropy(x, target); }},
      {"ce_sum", [&](const Tensor& x) { return nn::cross_entropy(x, target, R::Sum); }},
      {"ce_weight", [&](const Tensor& x) { return nn::cross_entropy(x, target, R::Mean, -100, 0, weight); }},
      {"ce_smooth", [&](const Tensor& x) { return nn::cross_entropy(x, target, R::Mean, -100, 0.1); }},
      {"ce_weight_smooth", [&](const Tensor& x) { return nn::cross_entropy(x, target, R::Mean, -100, 0.1, weight); }},
      {"ce_ignore", [&](const Tensor& x) { return nn::cross_entropy(x, ignored); }},
      {"ce_probs", [&](const Tensor& x) { return nn::cross_entropy(x, probs); }},
      {"ce_probs_weight_smooth", [&](const Tensor& x) { return nn::cross_entropy(x, probs, R::Mean, -100, 0.2, weight); }},
      {"nll_weight", [&](const Tensor& x) { return nn::nll_loss(nn::log_softmax(x, 1), target, R::Mean, -100, weight); }},
  };
  for (auto& [name, fn] : cases) {
    const std::string& case_name = name;  // clang 14 lambdas cannot capture structured bindings
    INFO(case_name);
    Tensor logits = tensor_of("logits", {4, 5});
    logits.requires_grad_();
    Tensor loss = fn(logits);
    check_values(to_ref(loss).v, ref.at("loss." + name), 1e-10);
    loss.backward();
    check_values(to_ref(logits.grad()).v, ref.at("grad." + name), 1e-9);
  }
}
