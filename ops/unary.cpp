#include "ops/unary.h"

#include "ops/creation.h"
#include "ops/register.h"
#include "runtime/error.h"

namespace ember {

namespace {

// The dtype a unary op computes in (and, except for predicates, returns) for input `in`.
template <typename F>
DType compute_dtype(DType in) {
  switch (F::kKind) {
    case UnaryKind::Math:
      return is_floating(in) ? in : kDefaultFloat;
    case UnaryKind::FloatOnly:
      EMBER_CHECK(is_floating(in), Unsupported, "[", F::kName,
                  "] expected a floating-point tensor, got ", in);
      return in;
    case UnaryKind::Numeric:
      EMBER_CHECK(in != kBool, Unsupported, "[", F::kName, "] not supported for dtype bool");
      return in;
    case UnaryKind::Predicate:
      return in;
  }
  return in;
}

template <typename F>
Tensor run_unary(const Tensor& t, F fn, DType compute) {
  DType out = F::kKind == UnaryKind::Predicate ? kBool : compute;
  return apply1(std::make_shared<UnaryOp<F>>(fn), {t.to(compute)}, {t.sizes(), out});
}

template <typename F>
Tensor run_unary_op(const Tensor& t, F fn = {}) {
  return run_unary(t, fn, compute_dtype<F>(t.dtype()));
}

// Integer tensors take integer bounds, which must fit the dtype (as PyTorch checks).
void check_bound_fits(const char* op, const char* which, const Scalar& bound, DType dtype) {
  if (is_floating(dtype) || dtype == kBool) return;
  double v = bound.to_double();
  double lo = dtype == kUInt8 ? 0 : dtype == kInt8 ? -128 : dtype == kInt32 ? -2147483648.0 : -9.3e18;
  double hi = dtype == kUInt8 ? 255 : dtype == kInt8 ? 127 : dtype == kInt32 ? 2147483647.0 : 9.3e18;
  EMBER_CHECK(v >= lo && v <= hi, InvalidArgument, "[", op, "] ", which, " ", bound, " cannot be converted to ",
              dtype, " without overflow");
}

unary::Clamp make_clamp(const char* op, const std::optional<Scalar>& min, const std::optional<Scalar>& max,
                        DType dtype) {
  EMBER_CHECK(min || max, InvalidArgument, "[", op, "] at least one of min and max must be given");
  if (min) check_bound_fits(op, "min", *min, dtype);
  if (max) check_bound_fits(op, "max", *max, dtype);
  unary::Clamp c;
  c.has_lo = min.has_value();
  c.has_hi = max.has_value();
  if (min) { c.lo = min->to_double(); c.lo_i = min->to<int64_t>(); }
  if (max) { c.hi = max->to_double(); c.hi_i = max->to<int64_t>(); }
  return c;
}

DType clamp_dtype(const Tensor& t, const std::optional<Scalar>& min, const std::optional<Scalar>& max) {
  TensorList operands{t};
  if (min) operands.push_back(scalar_tensor(*min));
  if (max) operands.push_back(scalar_tensor(*max));
  return result_type(operands);
}

}  // namespace

Tensor neg(const Tensor& t) { return run_unary_op<unary::Neg>(t); }
Tensor abs(const Tensor& t) { return run_unary_op<unary::Abs>(t); }
Tensor exp(const Tensor& t) { return run_unary_op<unary::Exp>(t); }
Tensor log(const Tensor& t) { return run_unary_op<unary::Log>(t); }
Tensor log1p(const Tensor& t) { return run_unary_op<unary::Log1p>(t); }
Tensor expm1(const Tensor& t) { return run_unary_op<unary::Expm1>(t); }
Tensor sqrt(const Tensor& t) { return run_unary_op<unary::Sqrt>(t); }
Tensor rsqrt(const Tensor& t) { return run_unary_op<unary::Rsqrt>(t); }
Tensor sin(const Tensor& t) { return run_unary_op<unary::Sin>(t); }
Tensor cos(const Tensor& t) { return run_unary_op<unary::Cos>(t); }
Tensor tanh(const Tensor& t) { return run_unary_op<unary::Tanh>(t); }
Tensor sigmoid(const Tensor& t) { return run_unary_op<unary::Sigmoid>(t); }
Tensor erf(const Tensor& t) { return run_unary_op<unary::Erf>(t); }
Tensor reciprocal(const Tensor& t) { return run_unary_op<unary::Reciprocal>(t); }
Tensor relu(const Tensor& t) { return run_unary_op<unary::Relu>(t); }
Tensor sign(const Tensor& t) { return run_unary_op<unary::Sign>(t); }
Tensor silu(const Tensor& t) { return run_unary_op<unary::Silu>(t); }
Tensor hardswish(const Tensor& t) { return run_unary_op<unary::Hardswish>(t); }
Tensor hardsigmoid(const Tensor& t) { return run_unary_op<unary::Hardsigmoid>(t); }
Tensor isnan(const Tensor& t) { return run_unary_op<unary::IsNan>(t); }
Tensor isinf(const Tensor& t) { return run_unary_op<unary::IsInf>(t); }
Tensor logical_not(const Tensor& t) { return run_unary_op<unary::LogicalNot>(t); }

Tensor gelu(const Tensor& t, std::string_view approximate) {
  if (approximate == "none") return run_unary_op<unary::Gelu>(t);
  if (approximate == "tanh") return run_unary_op<unary::GeluTanh>(t);
  throw_error(ErrorCode::InvalidArgument,
              str_cat("[gelu] approximate must be \"none\" or \"tanh\", got \"", approximate, "\""));
}

namespace {
template <typename F>
const Tensor& unary_inplace(const Tensor& t, const char* op) {
  EMBER_CHECK(compute_dtype<F>(t.dtype()) == t.dtype(), DTypeMismatch, "[", op, "] cannot write a result of dtype ",
              compute_dtype<F>(t.dtype()), " in place into a tensor of dtype ", t.dtype());
  apply_into(std::make_shared<UnaryOp<F>>(), {t}, {t});
  return t;
}
}  // namespace

const Tensor& relu_(const Tensor& t) { return unary_inplace<unary::Relu>(t, "relu_"); }
const Tensor& gelu_(const Tensor& t, std::string_view approximate) {
  if (approximate == "none") return unary_inplace<unary::Gelu>(t, "gelu_");
  if (approximate == "tanh") return unary_inplace<unary::GeluTanh>(t, "gelu_");
  throw_error(ErrorCode::InvalidArgument,
              str_cat("[gelu_] approximate must be \"none\" or \"tanh\", got \"", approximate, "\""));
}

Tensor softplus(const Tensor& t, double beta, double threshold) {
  return run_unary_op(t, unary::Softplus{.beta = beta, .threshold = threshold});
}
Tensor leaky_relu(const Tensor& t, double slope) { return run_unary_op(t, unary::LeakyRelu{.slope = slope}); }
Tensor elu(const Tensor& t, double alpha) { return run_unary_op(t, unary::Elu{.alpha = alpha}); }

Tensor clamp(const Tensor& t, std::optional<Scalar> min, std::optional<Scalar> max) {
  DType dtype = clamp_dtype(t, min, max);
  unary::Clamp c = make_clamp("clamp", min, max, dtype);
  EMBER_CHECK(dtype != kBool, Unsupported, "[clamp] not supported for dtype bool");
  return run_unary(t, c, dtype);
}

const Tensor& clamp_(const Tensor& t, std::optional<Scalar> min, std::optional<Scalar> max) {
  EMBER_CHECK(min || max, InvalidArgument, "[clamp_] at least one of min and max must be given");
  DType dtype = clamp_dtype(t, min, max);
  EMBER_CHECK(dtype == t.dtype(), DTypeMismatch, "[clamp_] result type ", dtype,
              " cannot be written in place into a tensor of dtype ", t.dtype());
  EMBER_CHECK(dtype != kBool, Unsupported, "[clamp_] not supported for dtype bool");
  unary::Clamp c = make_clamp("clamp_", min, max, dtype);
  apply_into(std::make_shared<UnaryOp<unary::Clamp>>(c), {t}, {t});
  return t;
}

Tensor pow(const Tensor& t, const Scalar& exponent) {
  DType dtype = result_type({t, scalar_tensor(exponent)});
  EMBER_CHECK(dtype != kBool, Unsupported, "[pow] not supported for dtype bool");
  unary::PowScalar p;
  p.e = exponent.to_double();
  if (!is_floating(dtype)) {
    EMBER_CHECK(exponent.to<int64_t>() >= 0, InvalidArgument,
                "[pow] integers to negative integer powers are not allowed (exponent ",
                exponent.to<int64_t>(), ")");
    p.e_i = exponent.to<int64_t>();
  }
  return run_unary(t, p, dtype);
}

void register_unary_ops(OpRegistry& r) {
  auto set_of = [](UnaryKind k) {
    switch (k) {
      case UnaryKind::Math: return kAllSet;  // integers compute in float32
      case UnaryKind::FloatOnly: return kFloatingSet;
      case UnaryKind::Numeric: return kNumericSet;
      case UnaryKind::Predicate: return kAllSet;
    }
    return kAllSet;
  };
#define X(F)                                                 \
  r.add("unary", unary::F::kName, set_of(unary::F::kKind),     \
        {.cuda_kernel = true, .backward = UnaryOp<unary::F>().differentiable()});
  EMBER_FOR_EACH_UNARY(X)
#undef X
  r.add("unary", "clamp_", kNumericSet, {.cuda_kernel = true, .backward = true});
}

}  // namespace ember
