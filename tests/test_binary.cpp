// Every binary op, on every device and dtype, with broadcasting and layouts, against float64;
// PyTorch's promotion rules; scalars; in-place forms; where.
#include <cmath>

#include "tests/harness.h"

using namespace ember;
using namespace ember::test;

namespace {

enum class Kind { Arith, ArithBool, TrueDiv, Compare, Logical, Bitwise };

struct BinaryCase {
  const char* name;
  std::function<Tensor(const Tensor&, const Tensor&)> op;
  std::function<double(double, double)> ref;
  Kind kind;
  bool nonzero_b = false;  // divisor-like second operand
  bool positive_a = false; // pow: a positive base for floats
};

double py_mod(double a, double b) {
  double r = std::fmod(a, b);
  if (r != 0 && (r < 0) != (b < 0)) r += b;
  return r;
}

std::vector<BinaryCase> binary_cases() {
  auto b2d = [](bool v) { return v ? 1.0 : 0.0; };
  return {
      {"add", [](auto& a, auto& b) { return add(a, b); }, [](double a, double b) { return a + b; }, Kind::ArithBool},
      {"add(alpha=2)", [](auto& a, auto& b) { return add(a, b, 2); }, [](double a, double b) { return a + 2 * b; },
       Kind::ArithBool},
      {"sub", [](auto& a, auto& b) { return sub(a, b); }, [](double a, double b) { return a - b; }, Kind::Arith},
      {"sub(alpha=3)", [](auto& a, auto& b) { return sub(a, b, 3); }, [](double a, double b) { return a - 3 * b; },
       Kind::Arith},
      {"mul", [](auto& a, auto& b) { return mul(a, b); }, [](double a, double b) { return a * b; }, Kind::ArithBool},
      {"div", [](auto& a, auto& b) { return div(a, b); }, [](double a, double b) { return a / b; }, Kind::TrueDiv,
       true},
      {"div(trunc)", [](auto& a, auto& b) { return div(a, b, RoundingMode::Trunc); },
       [](double a, double b) { return std::trunc(a / b); }, Kind::Arith, true},
      {"div(floor)", [](auto& a, auto& b) { return div(a, b, RoundingMode::Floor); },
       [](double a, double b) { return std::floor(a / b); }, Kind::Arith, true},
      {"remainder", [](auto& a, auto& b) { return remainder(a, b); }, py_mod, Kind::Arith, true},
      {"pow", [](auto& a, auto& b) { return pow(a, b); }, [](double a, double b) { return std::pow(a, b); },
       Kind::Arith, false, true},
      {"maximum", [](auto& a, auto& b) { return maximum(a, b); }, [](double a, double b) { return std::max(a, b); },
       Kind::ArithBool},
      {"minimum", [](auto& a, auto& b) { return minimum(a, b); }, [](double a, double b) { return std::min(a, b); },
       Kind::ArithBool},
      {"eq", [](auto& a, auto& b) { return eq(a, b); }, [=](double a, double b) { return b2d(a == b); }, Kind::Compare},
      {"ne", [](auto& a, auto& b) { return ne(a, b); }, [=](double a, double b) { return b2d(a != b); }, Kind::Compare},
      {"lt", [](auto& a, auto& b) { return lt(a, b); }, [=](double a, double b) { return b2d(a < b); }, Kind::Compare},
      {"le", [](auto& a, auto& b) { return le(a, b); }, [=](double a, double b) { return b2d(a <= b); }, Kind::Compare},
      {"gt", [](auto& a, auto& b) { return gt(a, b); }, [=](double a, double b) { return b2d(a > b); }, Kind::Compare},
      {"ge", [](auto& a, auto& b) { return ge(a, b); }, [=](double a, double b) { return b2d(a >= b); }, Kind::Compare},
      {"logical_and", [](auto& a, auto& b) { return logical_and(a, b); },
       [=](double a, double b) { return b2d(a != 0 && b != 0); }, Kind::Logical},
      {"logical_or", [](auto& a, auto& b) { return logical_or(a, b); },
       [=](double a, double b) { return b2d(a != 0 || b != 0); }, Kind::Logical},
      {"logical_xor", [](auto& a, auto& b) { return logical_xor(a, b); },
       [=](double a, double b) { return b2d((a != 0) != (b != 0)); }, Kind::Logical},
      {"bitwise_and", [](auto& a, auto& b) { return bitwise_and(a, b); },
       [](double a, double b) { return static_cast<double>(static_cast<int64_t>(a) & static_cast<int64_t>(b)); },
       Kind::Bitwise},
      {"bitwise_or", [](auto& a, auto& b) { return bitwise_or(a, b); },
       [](double a, double b) { return static_cast<double>(static_cast<int64_t>(a) | static_cast<int64_t>(b)); },
       Kind::Bitwise},
      {"bitwise_xor", [](auto& a, auto& b) { return bitwise_xor(a, b); },
       [](double a, double b) { return static_cast<double>(static_cast<int64_t>(a) ^ static_cast<int64_t>(b)); },
       Kind::Bitwise},
  };
}

// Pairs of shapes that broadcast.
const std::vector<std::pair<Shape, Shape>> kShapePairs = {
    {{}, {}}, {{7}, {7}}, {{3, 4}, {3, 4}}, {{3, 1}, {1, 4}}, {{4}, {2, 3, 4}}, {{}, {3, 4}},
    {{2, 0, 3}, {1, 3}}, {{2, 3, 4}, {2, 1, 4}}, {{5, 6}, {}},
};

Ref operand(const BinaryCase& c, DType dtype, const Shape& shape, bool second, uint64_t seed) {
  if (dtype == kBool) return random_int_ref(shape, 0, 1, seed);
  const bool divisor = second && c.nonzero_b;
  if (!is_floating(dtype)) {
    if (std::string(c.name) == "pow" && second) return random_int_ref(shape, 0, 3, seed);
    if (dtype == kUInt8) return divisor ? random_int_ref(shape, 1, 5, seed) : random_int_ref(shape, 0, 9, seed);
    Ref r = divisor ? random_int_ref(shape, 1, 5, seed) : random_int_ref(shape, -9, 9, seed);
    if (divisor) {  // mix signs so floor and trunc differ
      Ref s = random_int_ref(shape, 0, 1, seed + 7);
      for (size_t i = 0; i < r.v.size(); ++i) r.v[i] *= s.v[i] ? -1 : 1;
    }
    return r;
  }
  if (c.positive_a && !second) return random_ref(shape, 0.1, 3, seed);
  if (std::string(c.name) == "pow") return random_ref(shape, -2, 2, seed);
  if (divisor) {
    Ref r = random_ref(shape, 0.5, 3, seed);
    Ref s = random_int_ref(shape, 0, 1, seed + 7);
    for (size_t i = 0; i < r.v.size(); ++i) r.v[i] *= s.v[i] ? -1 : 1;
    return r;
  }
  // Small integers in half the elements make ties for comparisons and maximum.
  Ref r = random_ref(shape, -3, 3, seed);
  for (size_t i = 0; i < r.v.size(); i += 2) r.v[i] = std::round(r.v[i]);
  return r;
}

double wrap_to(double v, DType dtype) {
  switch (dtype) {
    case kUInt8: return static_cast<double>(static_cast<uint8_t>(static_cast<int64_t>(v)));
    case kInt8: return static_cast<double>(static_cast<int8_t>(static_cast<int64_t>(v)));
    case kInt32: return static_cast<double>(static_cast<int32_t>(static_cast<int64_t>(v)));
    default: return v;
  }
}

void run_case(const BinaryCase& c, DType dtype, Device device, const Shape& sa, const Shape& sb, Layout layout,
              uint64_t seed) {
  INFO(std::string(c.name), " dtype ", std::string(dtype_name(dtype)), " shapes ", shape_str(sa), " x ", shape_str(sb), " ",
       std::string(layout_name(layout)), " on ", device.str());
  Ref ra = operand(c, dtype, sa, false, seed), rb = operand(c, dtype, sb, true, seed + 1000);
  Tensor a = make_input(ra, dtype, device, layout);
  Tensor b = make_input(rb, dtype, device, Layout::Contiguous);
  const bool is_bool = dtype == kBool, is_float = is_floating(dtype);
  if ((c.kind == Kind::Arith && is_bool) || (c.kind == Kind::Bitwise && is_float)) {
    check_error([&] { c.op(a, b); }, ErrorCode::Unsupported, "[");
    return;
  }
  DType out = (c.kind == Kind::Compare || c.kind == Kind::Logical) ? kBool
              : (c.kind == Kind::TrueDiv && !is_float)              ? kFloat32
                                                                    : dtype;
  Ref expected = zip_ref(ra, rb, c.ref);
  if (is_bool && out == kBool) expected = map_ref(expected, [](double v) { return v != 0 ? 1.0 : 0.0; });
  if (!is_float && out != kFloat32 && out != kBool) expected = map_ref(expected, [dtype](double v) { return wrap_to(v, dtype); });
  check_close(c.op(a, b), expected, out);
}

}  // namespace

DEVICE_TEST("binary ops match float64 on every dtype, broadcast and layout") {
  uint64_t seed = 1;
  for (const BinaryCase& c : binary_cases())
    for (DType dtype : kEveryType)
      for (const auto& [sa, sb] : kShapePairs)
        for (Layout layout : layouts_for(sa)) run_case(c, dtype, device, sa, sb, layout, seed++);
}

DEVICE_TEST("binary ops on large tensors use the parallel path") {
  uint64_t seed = 500;
  for (const BinaryCase& c : binary_cases()) {
    run_case(c, kFloat32, device, {64, 1100}, {64, 1100}, Layout::Contiguous, seed++);
    run_case(c, kInt32, device, {64, 1100}, {1100}, Layout::Transposed, seed++);
  }
}

DEVICE_TEST("type promotion follows PyTorch") {
  TensorOptions on{std::nullopt, device};
  Tensor i32 = from_vector<int32_t>({1, 2}, {2}, on);
  Tensor i64 = from_vector<int64_t>({1, 2}, {2}, on);
  Tensor u8 = from_vector<uint8_t>({1, 2}, {2}, on);
  Tensor i8 = from_vector<int8_t>({1, 2}, {2}, on);
  Tensor f16 = ones({2}, {kFloat16, device});
  Tensor bf16 = ones({2}, {kBFloat16, device});
  Tensor f32 = ones({2}, {kFloat32, device});
  Tensor f64 = ones({2}, {kFloat64, device});
  Tensor b = from_vector<bool>({true, false}, {2}, on);
  CHECK((i32 + f16).dtype() == kFloat16);
  CHECK((f16 + bf16).dtype() == kFloat32);
  CHECK((f32 + f64).dtype() == kFloat64);
  CHECK((u8 + i8).dtype() == kInt32);  // PyTorch: int16, which ember does not have
  CHECK((u8 + i32).dtype() == kInt32);
  CHECK((i32 + i64).dtype() == kInt64);
  CHECK((b + b).dtype() == kBool);
  CHECK((b + i8).dtype() == kInt8);
  // Numbers: a float number makes integers float32 but never widens a float tensor.
  CHECK((i64 + 2.5).dtype() == kFloat32);
  CHECK((f16 * 2.5).dtype() == kFloat16);
  CHECK((u8 + 1000).dtype() == kUInt8);
  CHECK((b + 1).dtype() == kInt64);
  CHECK((b * 1.5).dtype() == kFloat32);
  // 0-d tensors rank below dimensioned ones within a category.
  Tensor s64 = full({}, 3.0, {kFloat64, device});
  CHECK((f32 + s64).dtype() == kFloat32);
  CHECK((i32 + s64).dtype() == kFloat64);
  CHECK((s64 + s64).dtype() == kFloat64);
  CHECK((i32 + full({}, 3, {kInt64, device})).dtype() == kInt32);
  CHECK(div(i32, i32).dtype() == kFloat32);
  CHECK(div(i32, i32, RoundingMode::Floor).dtype() == kInt32);
  CHECK(eq(i32, 1.5).dtype() == kBool);
  check_equal_values(i32 / 4, {0.25, 0.5});
  check_equal_values(eq(i32, 1.0), {1, 0});
  check_equal_values(3 - i32, {2, 1});
  check_equal_values(2.0 / f32, {2, 2});
}

DEVICE_TEST("integer division semantics and errors") {
  TensorOptions on{std::nullopt, device};
  Tensor a = from_vector<int64_t>({7, -7, 7, -7, INT64_MIN}, {5}, on);
  Tensor d = from_vector<int64_t>({2, 2, -2, -2, -1}, {5}, on);
  check_equal_values(div(a, d, RoundingMode::Trunc), {3, -3, -3, 3, static_cast<double>(INT64_MIN)});
  check_equal_values(div(a, d, RoundingMode::Floor), {3, -4, -4, 3, static_cast<double>(INT64_MIN)});
  check_equal_values(remainder(a, d), {1, 1, -1, -1, 0});
  Tensor z = from_vector<int32_t>({1, 0}, {2}, on);
  check_error([&] { div(z, z, RoundingMode::Floor); }, ErrorCode::InvalidArgument, "[div] integer division by zero");
  check_error([&] { remainder(z, 0); }, ErrorCode::InvalidArgument, "[remainder] integer division by zero");
  check_error([&] { floor_divide(z, z); }, ErrorCode::InvalidArgument, "[floor_divide] integer division by zero");
  // Float division by zero follows IEEE.
  Tensor f = tensor({1, -1, 0}, {kFloat32, device});
  check_equal_values(f / 0.0, {INFINITY, -INFINITY, NAN});
  check_equal_values(div(tensor({-7.5, 7.5}, {kFloat64, device}), -2.0, RoundingMode::Floor), {3, -4});
  check_equal_values(remainder(tensor({-7.5, 7.5}, {kFloat64, device}), 2.0), {0.5, 1.5});
  check_equal_values(pow(from_vector<int32_t>({2, -1, 1, 3}, {4}, on), from_vector<int32_t>({10, -3, -2, -1}, {4}, on)),
                     {1024, -1, 1, 0});
  check_equal_values(maximum(tensor({1, NAN}, {kFloat32, device}), tensor({NAN, 2}, {kFloat32, device})), {NAN, NAN});
}

DEVICE_TEST("in-place binary ops") {
  Tensor x = tensor({1, 2, 3}, {kFloat32, device});
  uint64_t v0 = x.version();
  add_(x, 1);
  CHECK(x.version() > v0);
  check_equal_values(x, {2, 3, 4});
  sub_(x, tensor({1, 1, 1}, {kFloat32, device}), 2);
  check_equal_values(x, {0, 1, 2});
  mul_(x, 3);
  div_(x, 2);
  check_equal_values(x, {0, 1.5, 3});
  x += 1;
  x *= 2;
  x -= 1;
  x /= 2;
  check_equal_values(x, {0.5, 2, 3.5});
  // self is read and written: x + x.
  add_(x, x);
  check_equal_values(x, {1, 4, 7});
  // An operand that overlaps self in another layout is read before it is overwritten.
  Tensor m = arange(4, {kFloat32, device}).reshape({2, 2});
  add_(m, m.transpose(0, 1));
  check_equal_values(m, {0, 3, 3, 6});
  // Broadcasting into self; results castable into self's dtype.
  Tensor y = zeros({2, 3}, {kFloat64, device});
  add_(y, tensor({1, 2, 3}, {kFloat32, device}));
  check_equal_values(y, {1, 2, 3, 1, 2, 3});
  Tensor i = from_vector<int64_t>({1, 2}, {2}, {std::nullopt, device});
  add_(i, 2);
  check_equal_values(i, {3, 4});
  div_(i, 2, RoundingMode::Floor);
  check_equal_values(i, {1, 2});
  check_error([&] { add_(i, 0.5); }, ErrorCode::DTypeMismatch,
              "[add_] result type float32 cannot be written in place into a tensor of dtype int64");
  check_error([&] { div_(i, 2); }, ErrorCode::DTypeMismatch, "[div_] result type float32");
  check_error([&] { add_(zeros({3}, {kFloat32, device}), zeros({2, 3}, {kFloat32, device})); }, ErrorCode::ShapeMismatch,
              "[add_] output with shape [3] does not match the broadcast shape [2, 3]");
  check_error([&] { mul_(zeros({1}, {kFloat32, device}).expand({4}), 2); }, ErrorCode::InvalidArgument,
              "elements overlap");
}

DEVICE_TEST("where") {
  Tensor c = from_vector<bool>({true, false, true}, {3}, {std::nullopt, device});
  Tensor a = tensor({1, 2, 3}, {kFloat32, device});
  Tensor b = from_vector<int64_t>({10, 20}, {2, 1}, {std::nullopt, device});
  Tensor r = where(c, a, b);
  CHECK(r.sizes() == Shape{2, 3});
  CHECK(r.dtype() == kFloat32);
  check_equal_values(r, {1, 10, 3, 1, 20, 3});
  check_equal_values(where(c, a, 0.5), {1, 0.5, 3});
  CHECK(where(c, 1, 2).dtype() == kInt64);
  for (DType dtype : kEveryType) {
    INFO(std::string(dtype_name(dtype)));
    Ref ra = random_int_ref({4, 5}, 0, 1, 3), rb = random_int_ref({4, 5}, 0, 1, 4), rc = random_int_ref({5}, 0, 1, 5);
    Tensor x = make_input(ra, dtype, device, Layout::Transposed), y = make_input(rb, dtype, device, Layout::Stepped);
    Tensor cond = from_ref(rc, kBool, device);
    Ref expected = zip_ref(zip_ref(rc, ra, [](double cv, double av) { return cv ? av : NAN; }), rb,
                       [](double v, double bv) { return std::isnan(v) ? bv : v; });
    check_close(where(cond, x, y), expected, dtype);
  }
  check_error([&] { where(a, a, a); }, ErrorCode::DTypeMismatch, "[where] expected a bool condition, got float32");
  check_error([&] { where(c, a, zeros({2}, {kFloat32, device})); }, ErrorCode::ShapeMismatch, "[where] shapes");
}

DEVICE_TEST("binary ops: errors name the op and what was expected") {
  Tensor a = zeros({2, 3}, {kFloat32, device});
  check_error([&] { add(a, zeros({4}, {kFloat32, device})); }, ErrorCode::ShapeMismatch,
              "[add] shapes [2, 3] and [4] cannot be broadcast together (dimension 1: 3 vs 4)");
  Tensor b = from_vector<bool>({true}, {1}, {std::nullopt, device});
  check_error([&] { sub(b, b); }, ErrorCode::Unsupported, "[sub] not supported for bool tensors (use logical_xor)");
  check_error([&] { bitwise_and(a, a); }, ErrorCode::Unsupported, "[bitwise_and] expected integer or bool tensors, got float32");
}
