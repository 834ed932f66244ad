// The graph operators (graph/ops.h), each mapped onto ember's eager ops.
#include "graph/ops.h"

#include <algorithm>

#include "nn/functional.h"
#include "nn/vision.h"
#include "ops/binary.h"
#include "ops/conv.h"
#include "ops/copy.h"
#include "ops/creation.h"
#include "ops/index.h"
#include "ops/join.h"
#include "ops/matmul.h"
#include "ops/reduce.h"
#include "ops/unary.h"
#include "ops/view.h"
#include "runtime/error.h"

namespace ember::graph {

namespace {

constexpr uint32_t kInt = attr_bit(AttrType::Int);
constexpr uint32_t kFloat = attr_bit(AttrType::Float) | attr_bit(AttrType::Int);
constexpr uint32_t kBool = attr_bit(AttrType::Bool);
constexpr uint32_t kString = attr_bit(AttrType::String);
constexpr uint32_t kInts = attr_bit(AttrType::Ints);
constexpr uint32_t kDType = attr_bit(AttrType::DType);
constexpr uint32_t kFloats = attr_bit(AttrType::Floats);

// A scalar attribute as the Scalar kind it was written with (an int stays an int, so integer
// tensors keep their dtype, as with a Python number in PyTorch).
Scalar scalar_attr(const Attributes& a, const std::string& name) {
  const AttrValue& v = a.get(name);
  if (const auto* i = std::get_if<int64_t>(&v)) return Scalar(*i);
  if (const auto* b = std::get_if<bool>(&v)) return Scalar(*b);
  return Scalar(a.get_float(name));
}

std::optional<Scalar> optional_scalar(const Attributes& a, const std::string& name) {
  if (a.is_none(name)) return std::nullopt;
  return scalar_attr(a, name);
}

// The second operand of a binary op: the second input, or the "other" attribute.
Operand other(const TensorList& in, const Attributes& a) {
  if (in.size() > 1) return Operand(in[1]);
  return Operand(scalar_attr(a, "other"));
}

DimList dims_attr(const Attributes& a, const std::string& name = "dims") {
  auto d = a.get_optional_ints(name);
  return d ? DimList(d->begin(), d->end()) : DimList{};
}

GraphOp unary(const char* name, Tensor (*fn)(const Tensor&)) {
  return {name, 1, 1, 1, {}, [fn](const TensorList& in, const Attributes&, const RunContext&) {
            return TensorList{fn(in[0])};
          }};
}

using BinaryFn = Tensor (*)(const Operand&, const Operand&);
GraphOp binary(const char* name, BinaryFn fn) {
  return {name, 1, 2, 1, {{"other", kNumber}}, [fn](const TensorList& in, const Attributes& a, const RunContext&) {
            return TensorList{fn(in[0], other(in, a))};
          }};
}

GraphOp reduction(const char* name, Tensor (*fn)(const Tensor&, const DimList&, bool)) {
  return {name, 1, 1, 1, {{"dims", kInts}, {"keepdim", kBool}},
          [fn](const TensorList& in, const Attributes& a, const RunContext&) {
            return TensorList{fn(in[0], dims_attr(a), a.get_bool("keepdim", false))};
          }};
}

Tensor sum_reduction(const Tensor& t, const DimList& d, bool k) { return sum(t, d, k); }
Tensor mean_reduction(const Tensor& t, const DimList& d, bool k) { return mean(t, d, k); }
Tensor amax_reduction(const Tensor& t, const DimList& d, bool k) { return amax(t, d, k); }
Tensor amin_reduction(const Tensor& t, const DimList& d, bool k) { return amin(t, d, k); }
Tensor logsumexp_reduction(const Tensor& t, const DimList& d, bool k) { return logsumexp(t, d, k); }

nn::Pair pair_attr(const Attributes& a, const std::string& name, nn::Pair fallback) {
  if (!a.has(name)) return fallback;
  std::vector<int64_t> v = a.get_ints(name);
  EMBER_CHECK(v.size() == 1 || v.size() == 2, InvalidModel, "[", a.node, "] attribute \"", name,
              "\" should hold 1 or 2 ints, got ", v.size());
  return {v[0], v.size() == 2 ? v[1] : v[0]};
}

// aten.convolution: 1-d or 2-d, plain or transposed.
Tensor convolution(const TensorList& in, const Attributes& a) {
  const Tensor& x = in[0];
  const Tensor& w = in[1];
  const Tensor b = in.size() > 2 ? in[2] : Tensor();
  const bool transposed = a.get_bool("transposed", false);
  const int64_t groups = a.get_int("groups", 1);
  EMBER_CHECK(x.dim() == 3 || x.dim() == 4, ShapeMismatch, "[", a.node, "] convolution of a ", x.dim(),
              "-d input: only 1-d and 2-d convolutions are supported");
  EMBER_CHECK(x.dim() == 4 || (in.size() < 4 && !a.has("activation_min") && !a.has("activation_max")), InvalidModel,
              "[", a.node, "] only a 2-d convolution takes a residual or activation");
  if (x.dim() == 3) {  // as a 2-d convolution of height 1
    const nn::Pair stride{1, pair_attr(a, "stride", {1, 1})[0]}, padding{0, pair_attr(a, "padding", {0, 0})[0]};
    const nn::Pair dilation{1, pair_attr(a, "dilation", {1, 1})[0]};
    const nn::Pair out_pad{0, pair_attr(a, "output_padding", {0, 0})[0]};
    Tensor y = transposed ? nn::conv_transpose2d(unsqueeze(x, 2), unsqueeze(w, 2), b, stride, padding, out_pad, groups, dilation)
                          : nn::conv2d(unsqueeze(x, 2), unsqueeze(w, 2), b, stride, padding, dilation, groups);
    return squeeze(y, 2);
  }
  const nn::Pair stride = pair_attr(a, "stride", {1, 1}), padding = pair_attr(a, "padding", {0, 0});
  const nn::Pair dilation = pair_attr(a, "dilation", {1, 1});
  // A residual (4th input) and clamp bounds come from the inference pass fuse_conv_activation.
  const Tensor residual = in.size() > 3 ? in[3] : Tensor();
  if (residual.defined() || a.has("activation_min") || a.has("activation_max")) {
    EMBER_CHECK(!transposed, InvalidModel, "[", a.node, "] a transposed convolution takes no residual or activation");
    auto bound = [&](const char* name) {
      return a.has(name) ? std::optional<double>(a.get_float(name)) : std::nullopt;
    };
    return conv2d_fused(x, w, b, residual, bound("activation_min"), bound("activation_max"), stride, padding,
                        dilation, groups);
  }
  if (transposed)
    return nn::conv_transpose2d(x, w, b, stride, padding, pair_attr(a, "output_padding", {0, 0}), groups, dilation);
  return nn::conv2d(x, w, b, stride, padding, dilation, groups);
}

Tensor cast_to(const Tensor& t, std::optional<DType> dtype) { return dtype && *dtype != t.dtype() ? t.to(*dtype) : t; }

std::vector<GraphOp> make_ops() {
  std::vector<GraphOp> ops = {
      unary("neg", neg), unary("abs", abs), unary("exp", exp), unary("log", log), unary("log1p", log1p),
      unary("expm1", expm1), unary("sqrt", sqrt), unary("rsqrt", rsqrt), unary("sin", sin), unary("cos", cos),
      unary("tanh", tanh), unary("sigmoid", sigmoid), unary("erf", erf), unary("reciprocal", reciprocal),
      unary("relu", relu), unary("sign", sign), unary("silu", silu), unary("hardswish", hardswish),
      unary("hardsigmoid", hardsigmoid), unary("logical_not", logical_not),
      {"gelu", 1, 1, 1, {{"approximate", kString}},
       [](const TensorList& in, const Attributes& a, const RunContext&) {
         return TensorList{gelu(in[0], a.get_string("approximate", "none"))};
       }},
      {"leaky_relu", 1, 1, 1, {{"negative_slope", kFloat}},
       [](const TensorList& in, const Attributes& a, const RunContext&) {
         return TensorList{leaky_relu(in[0], a.get_float("negative_slope", 0.01))};
       }},
      {"elu", 1, 1, 1, {{"alpha", kFloat}},
       [](const TensorList& in, const Attributes& a, const RunContext&) {
         return TensorList{elu(in[0], a.get_float("alpha", 1.0))};
       }},
      {"softplus", 1, 1, 1, {{"beta", kFloat}, {"threshold", kFloat}},
       [](const TensorList& in, const Attributes& a, const RunContext&) {
         return TensorList{softplus(in[0], a.get_float("beta", 1.0), a.get_float("threshold", 20.0))};
       }},
      {"clamp", 1, 1, 1, {{"min", kNumber}, {"max", kNumber}},
       [](const TensorList& in, const Attributes& a, const RunContext&) {
         return TensorList{clamp(in[0], optional_scalar(a, "min"), optional_scalar(a, "max"))};
       }},
      binary("mul", mul), binary("maximum", maximum), binary("minimum", minimum), binary("remainder", remainder),
      binary("pow", pow), binary("eq", eq), binary("ne", ne), binary("lt", lt), binary("le", le), binary("gt", gt),
      binary("ge", ge), binary("logical_and", logical_and), binary("logical_or", logical_or),
      {"add", 1, 2, 1, {{"other", kNumber}, {"alpha", kNumber}},
       [](const TensorList& in, const Attributes& a, const RunContext&) {
         return TensorList{add(in[0], other(in, a), a.has("alpha") ? scalar_attr(a, "alpha") : Scalar(1))};
       }},
      {"sub", 1, 2, 1, {{"other", kNumber}, {"alpha", kNumber}},
       [](const TensorList& in, const Attributes& a, const RunContext&) {
         return TensorList{sub(in[0], other(in, a), a.has("alpha") ? scalar_attr(a, "alpha") : Scalar(1))};
       }},
      // other − alpha·input (PyTorch's rsub, from `1 - x`).
      {"rsub", 1, 2, 1, {{"other", kNumber}, {"alpha", kNumber}},
       [](const TensorList& in, const Attributes& a, const RunContext&) {
         return TensorList{sub(other(in, a), in[0], a.has("alpha") ? scalar_attr(a, "alpha") : Scalar(1))};
       }},
      {"div", 1, 2, 1, {{"other", kNumber}, {"rounding_mode", kString}},
       [](const TensorList& in, const Attributes& a, const RunContext&) {
         const std::string mode = a.get_string("rounding_mode", "");
         RoundingMode m = mode == "floor" ? RoundingMode::Floor : mode == "trunc" ? RoundingMode::Trunc : RoundingMode::None;
         EMBER_CHECK(mode.empty() || mode == "floor" || mode == "trunc", InvalidModel, "[", a.node,
                     "] div rounding_mode must be floor or trunc, got \"", mode, "\"");
         return TensorList{div(in[0], other(in, a), m)};
       }},
      {"where", 1, 3, 1, {{"self", kNumber}, {"other", kNumber}},
       [](const TensorList& in, const Attributes& a, const RunContext&) {
         // where(cond, x, y); x or y may be given as the "self" / "other" number instead.
         EMBER_CHECK(in.size() + a.has("self") + a.has("other") == 3, InvalidModel, "[", a.node,
                     "] where needs a condition and two operands");
         size_t next = 1;
         Operand x = a.has("self") ? Operand(scalar_attr(a, "self")) : Operand(in[next++]);
         Operand y = a.has("other") ? Operand(scalar_attr(a, "other")) : Operand(in[next++]);
         return TensorList{where(in[0], x, y)};
       }},
      {"masked_fill", 2, 3, 1, {{"value", kNumber}},
       [](const TensorList& in, const Attributes& a, const RunContext&) {
         return TensorList{masked_fill(in[0], in[1], in.size() > 2 ? Operand(in[2]) : Operand(scalar_attr(a, "value")))};
       }},
      // ---- matrix products ----
      // "activation" (none, relu, gelu_tanh) is set by the inference pass fuse_linear_activation.
      {"linear", 2, 3, 1, {{"activation", kString}},
       [](const TensorList& in, const Attributes& a, const RunContext&) {
         return TensorList{linear(in[0], in[1], in.size() > 2 && in[2].defined() ? std::optional<Tensor>(in[2]) : std::nullopt,
                                  gemm_activation_from(a.get_string("activation", "none"), "linear"))};
       }, 1u << 2},
      {"matmul", 2, 2, 1, {}, [](const TensorList& in, const Attributes&, const RunContext&) { return TensorList{matmul(in[0], in[1])}; }},
      {"mm", 2, 2, 1, {}, [](const TensorList& in, const Attributes&, const RunContext&) { return TensorList{mm(in[0], in[1])}; }},
      {"bmm", 2, 2, 1, {}, [](const TensorList& in, const Attributes&, const RunContext&) { return TensorList{bmm(in[0], in[1])}; }},
      {"addmm", 3, 3, 1, {{"beta", kFloat}, {"alpha", kFloat}},
       [](const TensorList& in, const Attributes& a, const RunContext&) {
         return TensorList{addmm(in[0], in[1], in[2], a.get_float("beta", 1.0), a.get_float("alpha", 1.0))};
       }},
      // ---- reductions ----
      reduction("sum", sum_reduction), reduction("mean", mean_reduction), reduction("amax", amax_reduction),
      reduction("amin", amin_reduction), reduction("logsumexp", logsumexp_reduction),
      {"var", 1, 1, 1, {{"dims", kInts}, {"correction", kFloat}, {"keepdim", kBool}},
       [](const TensorList& in, const Attributes& a, const RunContext&) {
         return TensorList{var(in[0], dims_attr(a), a.get_float("correction", 1.0), a.get_bool("keepdim", false))};
       }},
      {"argmax", 1, 1, 1, {{"dim", kInt}, {"keepdim", kBool}},
       [](const TensorList& in, const Attributes& a, const RunContext&) {
         std::optional<int64_t> d;
         if (!a.is_none("dim")) d = a.get_int("dim");
         return TensorList{argmax(in[0], d, a.get_bool("keepdim", false))};
       }},
      {"softmax", 1, 1, 1, {{"dim", kInt, true}},
       [](const TensorList& in, const Attributes& a, const RunContext&) {
         return TensorList{nn::softmax(in[0], a.get_int("dim"))};
       }},
      {"log_softmax", 1, 1, 1, {{"dim", kInt, true}},
       [](const TensorList& in, const Attributes& a, const RunContext&) {
         return TensorList{nn::log_softmax(in[0], a.get_int("dim"))};
       }},
      // ---- shapes ----
      {"reshape", 1, 1, 1, {{"shape", kInts, true}},
       [](const TensorList& in, const Attributes& a, const RunContext&) {
         auto s = a.get_ints("shape");
         return TensorList{reshape(in[0], Shape(s.begin(), s.end()))};
       }},
      {"permute", 1, 1, 1, {{"dims", kInts, true}},
       [](const TensorList& in, const Attributes& a, const RunContext&) {
         return TensorList{permute(in[0], a.get_ints("dims"))};
       }},
      {"transpose", 1, 1, 1, {{"dim0", kInt, true}, {"dim1", kInt, true}},
       [](const TensorList& in, const Attributes& a, const RunContext&) {
         return TensorList{transpose(in[0], a.get_int("dim0"), a.get_int("dim1"))};
       }},
      {"unsqueeze", 1, 1, 1, {{"dim", kInt, true}},
       [](const TensorList& in, const Attributes& a, const RunContext&) {
         return TensorList{unsqueeze(in[0], a.get_int("dim"))};
       }},
      {"squeeze", 1, 1, 1, {{"dims", kInts}},
       [](const TensorList& in, const Attributes& a, const RunContext&) {
         auto dims = a.get_optional_ints("dims");
         if (!dims) return TensorList{squeeze(in[0])};
         // Squeeze the highest dims first so the lower ones keep their positions.
         std::vector<int64_t> d = *dims;
         for (int64_t& x : d) x = x < 0 ? x + in[0].dim() : x;
         std::sort(d.rbegin(), d.rend());
         Tensor t = in[0];
         for (int64_t x : d)
           if (x >= 0 && x < t.dim() && t.sizes()[x] == 1) t = squeeze(t, x);
         return TensorList{t};
       }},
      {"flatten", 1, 1, 1, {{"start_dim", kInt}, {"end_dim", kInt}},
       [](const TensorList& in, const Attributes& a, const RunContext&) {
         return TensorList{flatten(in[0], a.get_int("start_dim", 0), a.get_int("end_dim", -1))};
       }},
      {"expand", 1, 1, 1, {{"shape", kInts, true}},
       [](const TensorList& in, const Attributes& a, const RunContext&) {
         auto s = a.get_ints("shape");
         return TensorList{expand(in[0], Shape(s.begin(), s.end()))};
       }},
      {"slice", 1, 1, 1, {{"dim", kInt}, {"start", kInt}, {"end", kInt}, {"step", kInt}},
       [](const TensorList& in, const Attributes& a, const RunContext&) {
         std::optional<int64_t> start, end;
         if (!a.is_none("start")) start = a.get_int("start");
         if (!a.is_none("end")) end = a.get_int("end");
         return TensorList{slice(in[0], a.get_int("dim", 0), start, end, a.get_int("step", 1))};
       }},
      {"select", 1, 1, 1, {{"dim", kInt, true}, {"index", kInt, true}},
       [](const TensorList& in, const Attributes& a, const RunContext&) {
         return TensorList{select(in[0], a.get_int("dim"), a.get_int("index"))};
       }},
      {"cat", 1, -1, 1, {{"dim", kInt}},
       [](const TensorList& in, const Attributes& a, const RunContext&) { return TensorList{cat(in, a.get_int("dim", 0))}; }},
      {"stack", 1, -1, 1, {{"dim", kInt}},
       [](const TensorList& in, const Attributes& a, const RunContext&) { return TensorList{stack(in, a.get_int("dim", 0))}; }},
      {"split", 1, 1, -1, {{"sizes", kInts, true}, {"dim", kInt}},
       [](const TensorList& in, const Attributes& a, const RunContext&) {
         return TensorList(split(in[0], a.get_ints("sizes"), a.get_int("dim", 0)));
       }},
      {"contiguous", 1, 1, 1, {}, [](const TensorList& in, const Attributes&, const RunContext&) { return TensorList{in[0].contiguous()}; }},
      {"clone", 1, 1, 1, {}, [](const TensorList& in, const Attributes&, const RunContext&) { return TensorList{in[0].clone()}; }},
      {"detach", 1, 1, 1, {}, [](const TensorList& in, const Attributes&, const RunContext&) { return TensorList{in[0].detach()}; }},
      {"cast", 1, 1, 1, {{"dtype", kDType, true}},
       [](const TensorList& in, const Attributes& a, const RunContext&) { return TensorList{cast_to(in[0], a.get_dtype("dtype"))}; }},
      // ---- creation ----
      {"full", 0, 0, 1, {{"shape", kInts, true}, {"value", kNumber, true}, {"dtype", kDType}},
       [](const TensorList&, const Attributes& a, const RunContext& ctx) {
         auto s = a.get_ints("shape");
         TensorOptions o{a.get_optional_dtype("dtype").value_or(kFloat32), ctx.device};
         return TensorList{full(Shape(s.begin(), s.end()), scalar_attr(a, "value"), o)};
       }},
      {"full_like", 1, 1, 1, {{"value", kNumber, true}, {"dtype", kDType}},
       [](const TensorList& in, const Attributes& a, const RunContext&) {
         return TensorList{full_like(in[0], scalar_attr(a, "value"), a.get_optional_dtype("dtype"))};
       }},
      {"arange", 0, 0, 1, {{"start", kNumber}, {"end", kNumber, true}, {"step", kNumber}, {"dtype", kDType}},
       [](const TensorList&, const Attributes& a, const RunContext& ctx) {
         Scalar start = a.has("start") ? scalar_attr(a, "start") : Scalar(int64_t{0});
         Scalar step = a.has("step") ? scalar_attr(a, "step") : Scalar(int64_t{1});
         TensorOptions o{a.get_optional_dtype("dtype").value_or(kInt64), ctx.device};
         return TensorList{arange(start, scalar_attr(a, "end"), step, o)};
       }},
      // ---- neural-network ops ----
      {"dropout", 1, 1, 1, {{"p", kFloat, true}},
       [](const TensorList& in, const Attributes& a, const RunContext& ctx) {
         return TensorList{nn::dropout(in[0], a.get_float("p"), ctx.training)};
       }},
      {"embedding", 2, 2, 1, {{"padding_idx", kInt}},
       [](const TensorList& in, const Attributes& a, const RunContext&) {
         std::optional<int64_t> pad;
         if (!a.is_none("padding_idx")) pad = a.get_int("padding_idx");
         return TensorList{nn::embedding(in[0], in[1], pad)};
       }},
      {"index_select", 2, 2, 1, {{"dim", kInt, true}},
       [](const TensorList& in, const Attributes& a, const RunContext&) {
         return TensorList{index_select(in[0], a.get_int("dim"), in[1])};
       }},
      // ---- convolutional networks ----
      // A 4th input (a residual added) and "activation_min" / "activation_max" (a relu or clamp
      // applied) are set by the inference pass fuse_conv_activation.
      {"convolution", 2, 4, 1,
       {{"stride", kInts}, {"padding", kInts}, {"dilation", kInts}, {"transposed", kBool}, {"output_padding", kInts},
        {"groups", kInt}, {"activation_min", kFloat}, {"activation_max", kFloat}},
       [](const TensorList& in, const Attributes& a, const RunContext&) { return TensorList{convolution(in, a)}; },
       (1u << 2) | (1u << 3)},
      {"max_pool2d", 1, 1, 1, {{"kernel", kInts, true}, {"stride", kInts}, {"padding", kInts}, {"dilation", kInts}, {"ceil_mode", kBool}},
       [](const TensorList& in, const Attributes& a, const RunContext&) {
         const nn::Pair k = pair_attr(a, "kernel", {1, 1});
         return TensorList{nn::max_pool2d(in[0], k, pair_attr(a, "stride", k), pair_attr(a, "padding", {0, 0}),
                                          pair_attr(a, "dilation", {1, 1}), a.get_bool("ceil_mode", false))};
       }},
      {"avg_pool2d", 1, 1, 1,
       {{"kernel", kInts, true}, {"stride", kInts}, {"padding", kInts}, {"ceil_mode", kBool}, {"count_include_pad", kBool},
        {"divisor_override", kInt}},
       [](const TensorList& in, const Attributes& a, const RunContext&) {
         const nn::Pair k = pair_attr(a, "kernel", {1, 1});
         std::optional<int64_t> divisor;
         if (a.has("divisor_override")) divisor = a.get_int("divisor_override");
         return TensorList{nn::avg_pool2d(in[0], k, pair_attr(a, "stride", k), pair_attr(a, "padding", {0, 0}),
                                          a.get_bool("ceil_mode", false), a.get_bool("count_include_pad", true), divisor)};
       }},
      {"adaptive_avg_pool2d", 1, 1, 1, {{"output_size", kInts, true}},
       [](const TensorList& in, const Attributes& a, const RunContext&) {
         return TensorList{nn::adaptive_avg_pool2d(in[0], pair_attr(a, "output_size", {1, 1}))};
       }},
      // Inputs x, weight, bias, running_mean, running_var (weight and bias may be absent). The
      // model's mode decides, as for a module: training normalises with batch statistics and
      // updates the running ones in place; evaluation uses the running ones.
      {"batch_norm", 5, 5, 1, {{"momentum", kFloat}, {"eps", kFloat}},
       [](const TensorList& in, const Attributes& a, const RunContext& ctx) {
         return TensorList{nn::batch_norm(in[0], in[3], in[4], in[1], in[2], ctx.training, a.get_float("momentum", 0.1),
                                          a.get_float("eps", 1e-5))};
       }, (1u << 1) | (1u << 2) | (1u << 3) | (1u << 4)},
      {"group_norm", 1, 3, 1, {{"groups", kInt, true}, {"eps", kFloat}},
       [](const TensorList& in, const Attributes& a, const RunContext&) {
         return TensorList{nn::group_norm(in[0], a.get_int("groups"), in.size() > 1 ? in[1] : Tensor(),
                                          in.size() > 2 ? in[2] : Tensor(), a.get_float("eps", 1e-5))};
       }, (1u << 1) | (1u << 2)},
      {"layer_norm", 1, 3, 1, {{"normalized_shape", kInts, true}, {"eps", kFloat}},
       [](const TensorList& in, const Attributes& a, const RunContext&) {
         const auto& shape = std::get<std::vector<int64_t>>(a.get("normalized_shape"));
         return TensorList{nn::layer_norm(in[0], Shape(shape.begin(), shape.end()), in.size() > 1 ? in[1] : Tensor(),
                                          in.size() > 2 ? in[2] : Tensor(), a.get_float("eps", 1e-5))};
       }, (1u << 1) | (1u << 2)},
      // Made by graph::fuse_add_layer_norm from an add and the layer norm reading it: outputs
      // the norm and the sum.
      {"add_layer_norm", 2, 4, 2, {{"normalized_shape", kInts, true}, {"eps", kFloat}},
       [](const TensorList& in, const Attributes& a, const RunContext&) {
         const auto& shape = std::get<std::vector<int64_t>>(a.get("normalized_shape"));
         auto [y, sum] = nn::add_layer_norm(in[0], in[1], Shape(shape.begin(), shape.end()),
                                            in.size() > 2 ? in[2] : Tensor(), in.size() > 3 ? in[3] : Tensor(),
                                            a.get_float("eps", 1e-5));
         return TensorList{y, sum};
       }, (1u << 2) | (1u << 3)},
      {"rms_norm", 1, 2, 1, {{"normalized_shape", kInts, true}, {"eps", kFloat}},
       [](const TensorList& in, const Attributes& a, const RunContext&) {
         const auto& shape = std::get<std::vector<int64_t>>(a.get("normalized_shape"));
         std::optional<double> eps;
         if (a.has("eps") && !a.is_none("eps")) eps = a.get_float("eps");
         return TensorList{nn::rms_norm(in[0], Shape(shape.begin(), shape.end()), in.size() > 1 ? in[1] : Tensor(), eps)};
       }, 1u << 1},
      // Dropout on the attention weights only while training, as the "dropout" op.
      {"scaled_dot_product_attention", 3, 4, 1,
       {{"dropout_p", kFloat}, {"is_causal", kBool}, {"scale", kFloat}, {"enable_gqa", kBool}},
       [](const TensorList& in, const Attributes& a, const RunContext& ctx) {
         std::optional<double> scale;
         if (a.has("scale") && !a.is_none("scale")) scale = a.get_float("scale");
         return TensorList{nn::scaled_dot_product_attention(
             in[0], in[1], in[2], in.size() > 3 ? in[3] : Tensor(), ctx.training ? a.get_float("dropout_p", 0) : 0.0,
             a.get_bool("is_causal", false), scale, a.get_bool("enable_gqa", false))};
       }, 1u << 3},
      {"interpolate", 1, 1, 1, {{"size", kInts, true}, {"mode", kString}, {"align_corners", kBool}, {"scale_factors", kFloats}},
       [](const TensorList& in, const Attributes& a, const RunContext&) {
         std::optional<std::array<double, 2>> scales;
         if (a.has("scale_factors")) {
           const auto* v = std::get_if<std::vector<double>>(&a.get("scale_factors"));
           EMBER_CHECK(v && v->size() == 2, InvalidModel, "[", a.node, "] scale_factors should hold 2 floats");
           scales = std::array<double, 2>{(*v)[0], (*v)[1]};
         }
         return TensorList{nn::interpolate(in[0], pair_attr(a, "size", {1, 1}), a.get_string("mode", "nearest"),
                                           a.get_bool("align_corners", false), scales)};
       }},
      {"pixel_shuffle", 1, 1, 1, {{"upscale_factor", kInt, true}},
       [](const TensorList& in, const Attributes& a, const RunContext&) {
         return TensorList{nn::pixel_shuffle(in[0], a.get_int("upscale_factor"))};
       }},
      {"gather", 2, 2, 1, {{"dim", kInt, true}},
       [](const TensorList& in, const Attributes& a, const RunContext&) {
         return TensorList{gather(in[0], a.get_int("dim"), in[1])};
       }},
  };
  std::sort(ops.begin(), ops.end(), [](const GraphOp& a, const GraphOp& b) { return a.name < b.name; });
  return ops;
}

}  // namespace

const std::vector<GraphOp>& graph_ops() {
  static const std::vector<GraphOp> ops = make_ops();
  return ops;
}

const GraphOp* find_graph_op(const std::string& name) {
  const auto& ops = graph_ops();
  auto it = std::lower_bound(ops.begin(), ops.end(), name, [](const GraphOp& op, const std::string& n) { return op.name < n; });
  return it != ops.end() && it->name == name ? &*it : nullptr;
}

}  // namespace ember::graph
