// nn: losses against float64 references and gradcheck, modules (names, init, state dicts,
// device moves), optimizers against PyTorch's update rules written out by hand, the .npy
// reader (the digits data and malformed files).
#include <cmath>
#include <cstdio>
#include <fstream>

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
  check_error([&] { nn::cross_entropy(logits, from_vector<int64_t>({1, 0, 5, 2}, {4}, {kInt64, device})); },
              ErrorCode::InvalidArgument, "outside [0, 5)");
  check_error([&] { nn::cross_entropy(logits, ones({4}, {kFloat32, device})); }, ErrorCode::InvalidArgument,
              "expected int64 class indices");
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
