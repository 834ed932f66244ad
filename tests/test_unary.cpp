// Every unary op, on every device and dtype, over shapes and layouts, against float64.
#include <cmath>
#include <numbers>

#include "tests/harness.h"

using namespace ember;
using namespace ember::test;

namespace {

// Promote: the dtype follows result_type with the op's integer scalars (bool becomes int64).
enum class Kind { Math, FloatOnly, Numeric, Promote, Predicate };

struct UnaryCase {
  const char* name;
  std::function<Tensor(const Tensor&)> op;
  std::function<double(double)> ref;
  double lo, hi;  // float input range
  Kind kind;
};

double sigmoid_ref(double x) { return 1 / (1 + std::exp(-x)); }

std::vector<UnaryCase> unary_cases() {
  const double s2 = std::sqrt(2.0), c = std::sqrt(2 / M_PI);
  return {
      {"neg", [](auto& t) { return neg(t); }, [](double x) { return -x; }, -3, 3, Kind::Numeric},
      {"abs", [](auto& t) { return abs(t); }, [](double x) { return std::fabs(x); }, -3, 3, Kind::Numeric},
      {"exp", [](auto& t) { return exp(t); }, [](double x) { return std::exp(x); }, -5, 5, Kind::Math},
      {"log", [](auto& t) { return log(t); }, [](double x) { return std::log(x); }, 0.1, 5, Kind::Math},
      {"log1p", [](auto& t) { return log1p(t); }, [](double x) { return std::log1p(x); }, -0.9, 5, Kind::Math},
      {"expm1", [](auto& t) { return expm1(t); }, [](double x) { return std::expm1(x); }, -3, 3, Kind::Math},
      {"sqrt", [](auto& t) { return sqrt(t); }, [](double x) { return std::sqrt(x); }, 0.1, 5, Kind::Math},
      {"rsqrt", [](auto& t) { return rsqrt(t); }, [](double x) { return 1 / std::sqrt(x); }, 0.1, 5, Kind::Math},
      {"sin", [](auto& t) { return sin(t); }, [](double x) { return std::sin(x); }, -3, 3, Kind::Math},
      {"cos", [](auto& t) { return cos(t); }, [](double x) { return std::cos(x); }, -3, 3, Kind::Math},
      {"tanh", [](auto& t) { return tanh(t); }, [](double x) { return std::tanh(x); }, -3, 3, Kind::Math},
      {"sigmoid", [](auto& t) { return sigmoid(t); }, sigmoid_ref, -6, 6, Kind::Math},
      {"erf", [](auto& t) { return erf(t); }, [](double x) { return std::erf(x); }, -2, 2, Kind::Math},
      {"reciprocal", [](auto& t) { return reciprocal(t); }, [](double x) { return 1 / x; }, 0.2, 3, Kind::Math},
      {"relu", [](auto& t) { return relu(t); }, [](double x) { return x > 0 ? x : 0; }, -3, 3, Kind::Numeric},
      {"sign", [](auto& t) { return sign(t); }, [](double x) { return (0 < x) - (x < 0); }, -3, 3, Kind::Numeric},
      {"gelu", [](auto& t) { return gelu(t); }, [=](double x) { return 0.5 * x * (1 + std::erf(x / s2)); }, -3, 3,
       Kind::FloatOnly},
      {"gelu_tanh", [](auto& t) { return gelu(t, "tanh"); },
       [=](double x) { return 0.5 * x * (1 + std::tanh(c * (x + 0.044715 * x * x * x))); }, -3, 3, Kind::FloatOnly},
      {"silu", [](auto& t) { return silu(t); }, [](double x) { return x * sigmoid_ref(x); }, -4, 4, Kind::FloatOnly},
      {"hardswish", [](auto& t) { return hardswish(t); },
       [](double x) { return x * std::clamp(x + 3, 0.0, 6.0) / 6; }, -4, 4, Kind::FloatOnly},
      {"hardsigmoid", [](auto& t) { return hardsigmoid(t); }, [](double x) { return std::clamp(x + 3, 0.0, 6.0) / 6; },
       -4, 4, Kind::FloatOnly},
      {"softplus", [](auto& t) { return softplus(t); }, [](double x) { return x > 20 ? x : std::log1p(std::exp(x)); },
       -4, 4, Kind::FloatOnly},
      {"softplus(beta=2, threshold=3)", [](auto& t) { return softplus(t, 2, 3); },
       [](double x) { return 2 * x > 3 ? x : std::log1p(std::exp(2 * x)) / 2; }, -4, 4, Kind::FloatOnly},
      {"leaky_relu", [](auto& t) { return leaky_relu(t); }, [](double x) { return x > 0 ? x : 0.01 * x; }, -3, 3,
       Kind::FloatOnly},
      {"leaky_relu(0.2)", [](auto& t) { return leaky_relu(t, 0.2); }, [](double x) { return x > 0 ? x : 0.2 * x; },
       -3, 3, Kind::FloatOnly},
      {"elu", [](auto& t) { return elu(t); }, [](double x) { return x > 0 ? x : std::expm1(x); }, -3, 3,
       Kind::FloatOnly},
      {"elu(0.5)", [](auto& t) { return elu(t, 0.5); }, [](double x) { return x > 0 ? x : 0.5 * std::expm1(x); }, -3,
       3, Kind::FloatOnly},
      {"clamp(-1, 2)", [](auto& t) { return clamp(t, -1, 2); }, [](double x) { return std::clamp(x, -1.0, 2.0); }, -3,
       3, Kind::Promote},
      {"clamp(min=0)", [](auto& t) { return clamp(t, 0); }, [](double x) { return std::max(x, 0.0); }, -3, 3,
       Kind::Promote},
      {"clamp(max=1)", [](auto& t) { return clamp(t, std::nullopt, 1); }, [](double x) { return std::min(x, 1.0); },
       -3, 3, Kind::Promote},
      {"pow(2)", [](auto& t) { return pow(t, 2); }, [](double x) { return x * x; }, -3, 3, Kind::Promote},
      {"pow(3)", [](auto& t) { return pow(t, 3); }, [](double x) { return x * x * x; }, -3, 3, Kind::Promote},
      {"isnan", [](auto& t) { return isnan(t); }, [](double x) { return std::isnan(x) ? 1 : 0; }, -3, 3,
       Kind::Predicate},
      {"isinf", [](auto& t) { return isinf(t); }, [](double x) { return std::isinf(x) ? 1 : 0; }, -3, 3,
       Kind::Predicate},
      {"logical_not", [](auto& t) { return logical_not(t); }, [](double x) { return x == 0 ? 1 : 0; }, -1, 1,
       Kind::Predicate},
  };
}

// What integers wrap to in `dtype` (uint8 negation).
double wrap_int(double x, DType dtype) {
  if (dtype == kUInt8) return std::fmod(std::fmod(x, 256) + 256, 256);
  if (dtype == kInt8) return static_cast<double>(static_cast<int8_t>(static_cast<int64_t>(x)));
  return x;
}

const std::vector<Shape> kShapes = {{}, {0}, {7}, {3, 5}, {2, 3, 4}, {2, 0, 3}, {1, 6}, {5, 1, 3}};

void run_case(const UnaryCase& c, DType dtype, Device device, const Shape& shape, Layout layout, uint64_t seed) {
  INFO(std::string(c.name), " dtype ", std::string(dtype_name(dtype)), " shape ", shape_str(shape), " ", std::string(layout_name(layout)), " on ",
       device.str());
  const bool is_int = !is_floating(dtype);
  Ref in = dtype == kBool     ? random_int_ref(shape, 0, 1, seed)
           : dtype == kUInt8  ? random_int_ref(shape, 0, 5, seed)
           : is_int           ? random_int_ref(shape, -5, 5, seed)
                              : random_ref(shape, c.lo, c.hi, seed);
  Tensor x = make_input(in, dtype, device, layout);
  std::string op_name("[");
  op_name.append(std::string(c.name).substr(0, std::string(c.name).find('(')));
  if ((c.kind == Kind::FloatOnly && !is_floating(dtype)) || (c.kind == Kind::Numeric && dtype == kBool)) {
    check_error([&] { c.op(x); }, ErrorCode::Unsupported, op_name);
    return;
  }
  if (std::string(c.name) == "clamp(-1, 2)" && dtype == kUInt8) {  // -1 does not fit uint8
    check_error([&] { c.op(x); }, ErrorCode::InvalidArgument, "[clamp] min -1 cannot be converted to uint8");
    return;
  }
  Tensor y = c.op(x);
  DType out = c.kind == Kind::Predicate                        ? kBool
              : c.kind == Kind::Math && !is_floating(dtype)    ? kFloat32
              : c.kind == Kind::Promote && dtype == kBool      ? kInt64
                                                               : dtype;
  Ref expected = map_ref(in, c.ref);
  if (is_int && c.kind != Kind::Math) expected = map_ref(expected, [dtype](double v) { return wrap_int(v, dtype); });
  check_close(y, expected, out);
  CHECK(y.device() == device);
}

}  // namespace

DEVICE_TEST("unary ops match float64 on every dtype, shape and layout") {
  uint64_t seed = 1;
  for (const UnaryCase& c : unary_cases())
    for (DType dtype : kEveryType)
      for (const Shape& shape : kShapes)
        for (Layout layout : layouts_for(shape)) run_case(c, dtype, device, shape, layout, seed++);
}

DEVICE_TEST("unary ops on a large tensor use the parallel path") {
  uint64_t seed = 100;
  for (const UnaryCase& c : unary_cases()) {
    run_case(c, kFloat32, device, {64, 1100}, Layout::Contiguous, seed++);
    run_case(c, kFloat32, device, {64, 1100}, Layout::Transposed, seed++);
  }
}

DEVICE_TEST("unary ops on special values") {
  const double inf = INFINITY, nan = NAN;
  Tensor x = tensor({0.0, -0.0, inf, -inf, nan, 1.0}, {kFloat32, device});
  check_equal_values(isnan(x), {0, 0, 0, 0, 1, 0});
  check_equal_values(isinf(x), {0, 0, 1, 1, 0, 0});
  check_equal_values(relu(x), {0, 0, inf, 0, nan, 1});
  // relu's gradient passes where the input is above 0 or NaN, as PyTorch's threshold_backward.
  Tensor g = tensor({2.0, 3.0, 4.0, 5.0, 6.0, 7.0}, {kFloat32, device});
  check_equal_values(relu_backward(g, x), {0, 0, 4, 0, 6, 7});
  x.requires_grad_();
  check_equal_values(grad({relu(x)}, {x}, {g})[0], {0, 0, 4, 0, 6, 7});
  check_equal_values(exp(x), {1, 1, inf, 0, nan, std::exp(1.0f)});
  check_equal_values(sign(x), {0, 0, 1, -1, 0, 1});  // NaN gives 0, as in PyTorch
  check_equal_values(clamp(x, -1, 1), {0, 0, 1, -1, nan, 1});
  check_equal_values(sigmoid(tensor({-1000.0, 1000.0}, {kFloat32, device})), {0, 1});
  check_equal_values(log(tensor({0.0, -1.0}, {kFloat32, device})), {-inf, nan});
  check_equal_values(softplus(tensor({50.0}, {kFloat32, device})), {50});
}

DEVICE_TEST("unary ops: integer semantics and promotion") {
  Tensor i = from_vector<int32_t>({-3, 0, 4}, {3}, {std::nullopt, device});
  CHECK(exp(i).dtype() == kFloat32);
  CHECK(sqrt(from_vector<bool>({true, false}, {2}, {std::nullopt, device})).dtype() == kFloat32);
  check_equal_values(abs(i), {3, 0, 4});
  check_equal_values(neg(from_vector<int8_t>({-128, 5}, {2}, {std::nullopt, device})), {-128, -5});  // wraps
  check_equal_values(pow(i, 2), {9, 0, 16});
  CHECK(pow(i, 2).dtype() == kInt32);
  CHECK(pow(i, 0.5).dtype() == kFloat32);  // a float exponent promotes
  check_equal_values(pow(from_vector<int64_t>({2, 3}, {2}, {std::nullopt, device}), 40),
                     {1099511627776.0, static_cast<double>(static_cast<int64_t>(12157665459056928801ull))});
  CHECK(clamp(i, 0.5).dtype() == kFloat32);  // promotes like PyTorch
  check_equal_values(clamp(i, 0.5), {0.5, 0.5, 4});
  CHECK(isnan(i).dtype() == kBool);
  check_equal_values(logical_not(i), {0, 1, 0});
}

DEVICE_TEST("unary ops: errors name the op and what was expected") {
  Tensor i = from_vector<int64_t>({1, 2}, {2}, {std::nullopt, device});
  check_error([&] { gelu(i); }, ErrorCode::Unsupported, "[gelu] expected a floating-point tensor, got int64");
  check_error([&] { neg(from_vector<bool>({true}, {1}, {std::nullopt, device})); }, ErrorCode::Unsupported,
              "[neg] not supported for dtype bool");
  check_error([&] { gelu(ones({2}, {kFloat32, device}), "fast"); }, ErrorCode::InvalidArgument,
              "[gelu] approximate must be \"none\" or \"tanh\", got \"fast\"");
  check_error([&] { clamp(i, std::nullopt, std::nullopt); }, ErrorCode::InvalidArgument,
              "[clamp] at least one of min and max must be given");
  check_error([&] { pow(i, -1); }, ErrorCode::InvalidArgument, "[pow] integers to negative integer powers are not allowed");
  check_error([&] { clamp_(i, 0.5); }, ErrorCode::DTypeMismatch,
              "[clamp_] result type float32 cannot be written in place into a tensor of dtype int64");
}

DEVICE_TEST("clamp_ works in place and bumps the version") {
  Tensor x = tensor({-2, 0.5, 3}, {kFloat32, device});
  uint64_t v0 = x.version();
  const Tensor& r = clamp_(x, -1, 1);
  CHECK(r.is_same(x));
  CHECK(x.version() > v0);
  check_equal_values(x, {-1, 0.5, 1});
  Tensor e = ones({1}, {kFloat32, device}).expand({3});
  check_error([&] { clamp_(e, 0); }, ErrorCode::InvalidArgument, "elements overlap");
}

DEVICE_TEST("unary ops: gelu's one-pass gradient matches its float64 derivative, exact and tanh") {
  const double k = std::sqrt(2 / std::numbers::pi), c = 0.044715;
  for (const bool tanh_form : {false, true})
    for (DType dt : kFloatTypes) {
      INFO(std::string(tanh_form ? "tanh " : "exact "), dt);
      const Ref x = round_to(random_ref({2000}, -6, 6, 60), dt), g = round_to(random_ref({2000}, -1, 1, 61), dt);
      Ref want = x;
      for (size_t i = 0; i < x.v.size(); ++i) {
        const double v = x.v[i];
        double d = 0.5 * (1 + std::erf(v / std::numbers::sqrt2)) + v * std::exp(-0.5 * v * v) / std::sqrt(2 * std::numbers::pi);
        if (tanh_form) {
          const double t = std::tanh(k * (v + c * v * v * v));
          d = 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * k * (1 + 3 * c * v * v);
        }
        want.v[i] = g.v[i] * d;
      }
      Tensor xt = from_ref(x, dt, device).requires_grad_();
      backward({gelu(xt, tanh_form ? "tanh" : "none")}, {from_ref(g, dt, device)});
      check_close(xt.grad(), want, dt, 2);
    }
}

namespace {

/// |got − ref| in units of the float32 spacing at ref (subnormal spacing below FLT_MIN); NaN and
/// infinities must match exactly (infinite error otherwise).
double float_ulps(double got, double ref) {
  if (std::isnan(ref) || std::isnan(got)) return std::isnan(ref) && std::isnan(got) ? 0 : INFINITY;
  const float r = static_cast<float>(ref);  // past FLT_MAX: infinity, as the float function's result
  if (std::isinf(r) || std::isinf(got)) return got == r ? 0 : INFINITY;
  const double spacing = std::fabs(static_cast<double>(std::nextafterf(r, std::copysign(INFINITY, r))) - r);
  return std::fabs(got - ref) / std::max(spacing, 1.4012984643e-45);
}

}  // namespace

// The CPU loops call libmvec's vector expf, tanhf and erff (ops/cpu/vector_math.h) and libm's
// scalar forms of the rest, CUDA its own functions: all within 4 ulps of the float64 result
// (glibc's bound for its vector forms) over dense sweeps of each function's range, the ends of
// the float range, subnormal results, ±0, ±inf and NaN included. Measured here: exp 2.8, erf
// 1.8, tanh 1.0, sigmoid 3.1 (through expf), the scalar rest within 0.8; an approximation such as
// Eigen's float erf (7.5 ulps) fails. Whole contiguous tensors, so that the CPU runs the
// vectorised loop.
DEVICE_TEST("unary ops: float32 exp, log, sin, tanh, erf, ... within 4 ulps of float64 over dense sweeps") {
  struct Sweep {
    const char* name;
    std::function<Tensor(const Tensor&)> op;
    double (*ref)(double);
    double lo, hi;
    bool positive_log_grid;  // a geometric grid over (0, hi] instead of a linear one
  };
  const std::vector<Sweep> sweeps = {
      {"exp", [](auto& t) { return exp(t); }, [](double x) { return std::exp(x); }, -104, 89, false},
      {"expm1", [](auto& t) { return expm1(t); }, [](double x) { return std::expm1(x); }, -20, 89, false},
      {"log", [](auto& t) { return log(t); }, [](double x) { return std::log(x); }, 0, 3e38, true},
      {"log1p", [](auto& t) { return log1p(t); }, [](double x) { return std::log1p(x); }, -0.999, 1e6, false},
      {"sin", [](auto& t) { return sin(t); }, [](double x) { return std::sin(x); }, -100, 100, false},
      {"cos", [](auto& t) { return cos(t); }, [](double x) { return std::cos(x); }, -100, 100, false},
      {"tanh", [](auto& t) { return tanh(t); }, [](double x) { return std::tanh(x); }, -12, 12, false},
      {"erf", [](auto& t) { return erf(t); }, [](double x) { return std::erf(x); }, -6, 6, false},
      {"sigmoid", [](auto& t) { return sigmoid(t); }, sigmoid_ref, -80, 30, false},
  };
  const double inf = INFINITY;
  for (const Sweep& s : sweeps) {
    INFO(std::string(s.name), " on ", device.str());
    std::vector<float> xs;
    const int n = 200000;
    for (int i = 0; i <= n; ++i)
      xs.push_back(static_cast<float>(s.positive_log_grid ? std::pow(s.hi / 1e-37, double(i) / n) * 1e-37
                                                          : s.lo + (s.hi - s.lo) * i / n));
    for (double t = 1e-30; t < 1e-3; t *= 1.05) {  // small magnitudes, where erf, sin, tanh ≈ x
      xs.push_back(static_cast<float>(t));
      if (!s.positive_log_grid) xs.push_back(static_cast<float>(-t));
    }
    for (double v : {0.0, -0.0, inf, -inf, double(NAN), 1e-45, 3.4e38, -3.4e38}) xs.push_back(static_cast<float>(v));
    const Tensor x = from_vector<float>(xs, {static_cast<int64_t>(xs.size())}, {std::nullopt, device});
    const Ref y = to_ref(s.op(x));
    double worst = 0;
    float worst_at = 0;
    for (size_t i = 0; i < xs.size(); ++i) {
      const double e = float_ulps(y.v[i], s.ref(static_cast<double>(xs[i])));
      if (e > worst) worst = e, worst_at = xs[i];
    }
    INFO("worst ", worst, " ulps at x = ", worst_at);
    CHECK(worst <= 4);
  }
}
