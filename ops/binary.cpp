#include "ops/binary.h"

#include "ops/copy.h"
#include "ops/creation.h"
#include "ops/reduce.h"
#include "ops/register.h"
#include "ops/unary.h"
#include "runtime/error.h"

namespace ember {

Operand::Operand(const Scalar& s) : t_(scalar_tensor(s)) {}

namespace {

struct Dtypes {
  DType compute, out;
};

template <typename F>
Dtypes binary_dtypes(const Tensor& a, const Tensor& b, const char* op) {
  DType common = result_type({a, b});
  switch (F::kKind) {
    case BinaryKind::Arith:
      EMBER_CHECK(F::kAllowBool || common != kBool, Unsupported, "[", op,
                  "] not supported for bool tensors",
                  std::string_view(op) == "sub" ? " (use logical_xor)" : "");
      return {common, common};
    case BinaryKind::TrueDiv: {
      DType c = is_floating(common) ? common : kDefaultFloat;
      return {c, c};
    }
    case BinaryKind::Compare:
    case BinaryKind::Logical:
      return {common, kBool};
    case BinaryKind::Bitwise:
      EMBER_CHECK(!is_floating(common), Unsupported, "[", op,
                  "] expected integer or bool tensors, got ", common);
      return {common, common};
  }
  return {common, common};
}

// Integer division and modulo by zero trap on the CPU; refuse them with a clear error on
// every device, as PyTorch's CPU backend does.
void check_integer_divisor(const Tensor& b, DType compute, const char* op) {
  if (is_floating(compute)) return;
  EMBER_CHECK(!any(eq(b, 0)).item<bool>(), InvalidArgument, "[", op, "] integer division by zero");
}

template <typename F>
Tensor run_binary(const Operand& x, const Operand& y, F fn, const char* op = F::kName) {
  const Tensor& a = x.tensor();
  const Tensor& b = y.tensor();
  Dtypes d = binary_dtypes<F>(a, b, op);
  Shape shape = broadcast_shapes(a.sizes(), b.sizes(), op);
  common_device({a, b}, op);
  Tensor bc = b.to(d.compute);
  if constexpr (std::is_same_v<F, binary::DivTrunc> || std::is_same_v<F, binary::DivFloor> ||
                std::is_same_v<F, binary::Remainder>)
    check_integer_divisor(bc, d.compute, op);
  return apply1(std::make_shared<BinaryOp<F>>(fn), {a.to(d.compute), bc}, {shape, d.out});
}

template <typename F>
const Tensor& run_binary_inplace(const Tensor& self, const Operand& y, F fn, const char* op) {
  const Tensor& other = y.tensor();
  Dtypes d = binary_dtypes<F>(self, other, op);
  EMBER_CHECK(can_cast(d.out, self.dtype()), DTypeMismatch, "[", op, "] result type ", d.out,
              " cannot be written in place into a tensor of dtype ", self.dtype());
  Shape shape = broadcast_shapes(self.sizes(), other.sizes(), op);
  EMBER_CHECK(shape == self.sizes(), ShapeMismatch, "[", op, "] output with shape ",
              shape_str(self.sizes()), " does not match the broadcast shape ", shape_str(shape));
  if (d.compute != self.dtype() || d.out != self.dtype()) {
    copy_(self, run_binary(self, other, fn, op));
    return self;
  }
  Tensor o = other.to(d.compute);
  if constexpr (std::is_same_v<F, binary::DivTrunc> || std::is_same_v<F, binary::DivFloor>)
    check_integer_divisor(o, d.compute, op);
  // An operand that overlaps self in another layout would read already-written elements.
  if (o.shares_storage(self) && !(o.data() == self.data() && o.strides() == self.strides()))
    o = o.clone();
  apply_into(std::make_shared<BinaryOp<F>>(fn), {self, o}, {self});
  return self;
}

binary::Add add_fn(const Scalar& alpha) { return {.alpha = alpha.to_double(), .alpha_i = alpha.to<int64_t>()}; }
binary::Sub sub_fn(const Scalar& alpha) { return {.alpha = alpha.to_double(), .alpha_i = alpha.to<int64_t>()}; }

}  // namespace

Tensor add(const Operand& a, const Operand& b, const Scalar& alpha) { return run_binary(a, b, add_fn(alpha)); }
Tensor sub(const Operand& a, const Operand& b, const Scalar& alpha) { return run_binary(a, b, sub_fn(alpha)); }
Tensor mul(const Operand& a, const Operand& b) { return run_binary(a, b, binary::Mul{}); }

Tensor div(const Operand& a, const Operand& b, RoundingMode mode) {
  switch (mode) {
    case RoundingMode::Trunc: return run_binary(a, b, binary::DivTrunc{}, "div");
    case RoundingMode::Floor: return run_binary(a, b, binary::DivFloor{}, "div");
    case RoundingMode::None: break;
  }
  return run_binary(a, b, binary::Div{});
}

Tensor floor_divide(const Operand& a, const Operand& b) {
  return run_binary(a, b, binary::DivFloor{}, "floor_divide");
}
Tensor remainder(const Operand& a, const Operand& b) { return run_binary(a, b, binary::Remainder{}); }
Tensor pow(const Operand& a, const Operand& b) { return run_binary(a, b, binary::Pow{}); }
Tensor maximum(const Operand& a, const Operand& b) { return run_binary(a, b, binary::Maximum{}); }
Tensor relu_backward(const Tensor& grad, const Tensor& x) { return run_binary(grad, x, binary::ReluBackward{}); }
Tensor gelu_backward(const Tensor& grad, const Tensor& x, bool approximate_tanh) {
  binary::GeluBackward f;
  f.approximate_tanh = approximate_tanh;
  return run_binary(grad, x, f);
}
Tensor minimum(const Operand& a, const Operand& b) { return run_binary(a, b, binary::Minimum{}); }
Tensor eq(const Operand& a, const Operand& b) { return run_binary(a, b, binary::Eq{}); }
Tensor ne(const Operand& a, const Operand& b) { return run_binary(a, b, binary::Ne{}); }
Tensor lt(const Operand& a, const Operand& b) { return run_binary(a, b, binary::Lt{}); }
Tensor le(const Operand& a, const Operand& b) { return run_binary(a, b, binary::Le{}); }
Tensor gt(const Operand& a, const Operand& b) { return run_binary(a, b, binary::Gt{}); }
Tensor ge(const Operand& a, const Operand& b) { return run_binary(a, b, binary::Ge{}); }
Tensor logical_and(const Operand& a, const Operand& b) { return run_binary(a, b, binary::LogicalAnd{}); }
Tensor logical_or(const Operand& a, const Operand& b) { return run_binary(a, b, binary::LogicalOr{}); }
Tensor logical_xor(const Operand& a, const Operand& b) { return run_binary(a, b, binary::LogicalXor{}); }
Tensor bitwise_and(const Operand& a, const Operand& b) { return run_binary(a, b, binary::BitwiseAnd{}); }
Tensor bitwise_or(const Operand& a, const Operand& b) { return run_binary(a, b, binary::BitwiseOr{}); }
Tensor bitwise_xor(const Operand& a, const Operand& b) { return run_binary(a, b, binary::BitwiseXor{}); }

Tensor where(const Tensor& cond, const Operand& x, const Operand& y) {
  const Tensor& a = x.tensor();
  const Tensor& b = y.tensor();
  EMBER_CHECK(cond.dtype() == kBool, DTypeMismatch, "[where] expected a bool condition, got ", cond.dtype());
  DType dtype = result_type({a, b});
  Shape shape = broadcast_shapes(broadcast_shapes(cond.sizes(), a.sizes(), "where"), b.sizes(), "where");
  return apply1(std::make_shared<WhereOp>(), {cond, a.to(dtype), b.to(dtype)}, {shape, dtype});
}

const Tensor& add_(const Tensor& self, const Operand& other, const Scalar& alpha) {
  return run_binary_inplace(self, other, add_fn(alpha), "add_");
}
const Tensor& sub_(const Tensor& self, const Operand& other, const Scalar& alpha) {
  return run_binary_inplace(self, other, sub_fn(alpha), "sub_");
}
const Tensor& mul_(const Tensor& self, const Operand& other) { return run_binary_inplace(self, other, binary::Mul{}, "mul_"); }
const Tensor& div_(const Tensor& self, const Operand& other, RoundingMode mode) {
  switch (mode) {
    case RoundingMode::Trunc: return run_binary_inplace(self, other, binary::DivTrunc{}, "div_");
    case RoundingMode::Floor: return run_binary_inplace(self, other, binary::DivFloor{}, "div_");
    case RoundingMode::None: break;
  }
  return run_binary_inplace(self, other, binary::Div{}, "div_");
}

Tensor operator+(const Operand& a, const Operand& b) { return add(a, b); }
Tensor operator-(const Operand& a, const Operand& b) { return sub(a, b); }
Tensor operator*(const Operand& a, const Operand& b) { return mul(a, b); }
Tensor operator/(const Operand& a, const Operand& b) { return div(a, b); }
Tensor operator-(const Tensor& a) { return neg(a); }
const Tensor& operator+=(const Tensor& self, const Operand& other) { return add_(self, other); }
const Tensor& operator-=(const Tensor& self, const Operand& other) { return sub_(self, other); }
const Tensor& operator*=(const Tensor& self, const Operand& other) { return mul_(self, other); }
const Tensor& operator/=(const Tensor& self, const Operand& other) { return div_(self, other); }

void register_binary_ops(OpRegistry& r) {
  auto set_of = [](BinaryKind k, bool allow_bool) {
    switch (k) {
      case BinaryKind::Arith: return allow_bool ? kAllSet : kNumericSet;
      case BinaryKind::TrueDiv: return kNumericSet;
      case BinaryKind::Compare:
      case BinaryKind::Logical: return kAllSet;
      case BinaryKind::Bitwise: return kIntegralSet | kBoolSet;
    }
    return kAllSet;
  };
#define X(F)                                                                               \
  r.add("binary", binary::F::kName, set_of(binary::F::kKind, binary::F::kAllowBool),         \
        {.cuda_kernel = true, .backward = BinaryOp<binary::F>().differentiable()});
  EMBER_FOR_EACH_BINARY(X)
#undef X
  r.add("binary", "floor_divide", kNumericSet, {.cuda_kernel = true, .backward = true});
  r.add("binary", "where", kAllSet, {.cuda_kernel = true, .backward = true});
  r.add("binary", "add_", kAllSet, {.cuda_kernel = true, .backward = true});
  r.add("binary", "sub_", kNumericSet, {.cuda_kernel = true, .backward = true});
  r.add("binary", "mul_", kAllSet, {.cuda_kernel = true, .backward = true});
  r.add("binary", "div_", kNumericSet, {.cuda_kernel = true, .backward = true});
}

}  // namespace ember
