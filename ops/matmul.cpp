#include "ops/matmul.h"

#include "ops/register.h"
#include "ops/unary.h"
#include "ops/view.h"
#include "runtime/error.h"

namespace ember {

namespace {

void check_same_dtype(const Tensor& a, const Tensor& b, const char* op) {
  EMBER_CHECK(a.dtype() == b.dtype(), DTypeMismatch, "[", op, "] expected both inputs to have the same dtype, got ",
              a.dtype(), " and ", b.dtype());
  EMBER_CHECK(a.dtype() != kBool, Unsupported, "[", op, "] not supported for dtype bool");
}

// The batched product of 3-D operands, optionally with a bias already broadcast to [B, n, m].
Tensor gemm(const Tensor& a, const Tensor& b, const Tensor* bias, double beta, double alpha,
            GemmActivation activation = GemmActivation::kNone) {
  auto op = std::make_shared<GemmOp>();
  op->alpha = alpha;
  op->beta = beta;
  op->has_bias = bias != nullptr && beta != 0;
  op->activation = activation;
  TensorList in{a, b};
  if (op->has_bias) in.push_back(*bias);
  return apply1(op, in, {{a.sizes()[0], a.sizes()[1], b.sizes()[2]}, a.dtype()});
}

void check_inner(const Tensor& a, const Tensor& b, const char* op) {
  EMBER_CHECK(a.sizes()[a.dim() - 1] == b.sizes()[b.dim() == 1 ? 0 : b.dim() - 2], ShapeMismatch, "[", op,
              "] shapes ", shape_str(a.sizes()), " and ", shape_str(b.sizes()),
              " cannot be multiplied (inner dimensions ", a.sizes()[a.dim() - 1], " and ",
              b.sizes()[b.dim() == 1 ? 0 : b.dim() - 2], " differ)");
}

}  // namespace

GemmActivation gemm_activation_from(std::string_view name, const char* op) {
  if (name == "none") return GemmActivation::kNone;
  if (name == "relu") return GemmActivation::kRelu;
  if (name == "gelu_tanh") return GemmActivation::kGeluTanh;
  throw_error(ErrorCode::InvalidArgument,
              str_cat("[", op, "] activation must be \"none\", \"relu\" or \"gelu_tanh\", got \"", name, "\""));
}

const char* gemm_activation_name(GemmActivation a) {
  switch (a) {
    case GemmActivation::kNone: return "none";
    case GemmActivation::kRelu: return "relu";
    case GemmActivation::kGeluTanh: return "gelu_tanh";
  }
  return "none";
}

void apply_gemm_activation(const Tensor& out, GemmActivation a) {
  if (a == GemmActivation::kRelu) relu_(out);
  else if (a == GemmActivation::kGeluTanh) gelu_(out, "tanh");
}

Tensor mm(const Tensor& a, const Tensor& b) {
  EMBER_CHECK(a.dim() == 2 && b.dim() == 2, InvalidArgument, "[mm] expected 2-D inputs, got shapes ",
              shape_str(a.sizes()), " and ", shape_str(b.sizes()));
  check_same_dtype(a, b, "mm");
  check_inner(a, b, "mm");
  return gemm(unsqueeze(a, 0), unsqueeze(b, 0), nullptr, 0, 1).squeeze(0);
}

Tensor bmm(const Tensor& a, const Tensor& b) {
  EMBER_CHECK(a.dim() == 3 && b.dim() == 3, InvalidArgument, "[bmm] expected 3-D inputs, got shapes ",
              shape_str(a.sizes()), " and ", shape_str(b.sizes()));
  check_same_dtype(a, b, "bmm");
  EMBER_CHECK(a.sizes()[0] == b.sizes()[0], ShapeMismatch, "[bmm] batch sizes differ: ", shape_str(a.sizes()),
              " and ", shape_str(b.sizes()));
  check_inner(a, b, "bmm");
  return gemm(a, b, nullptr, 0, 1);
}

Tensor matmul(const Tensor& a, const Tensor& b) {
  EMBER_CHECK(a.dim() >= 1 && b.dim() >= 1, InvalidArgument,
              "[matmul] both inputs need at least one dimension, got shapes ", shape_str(a.sizes()), " and ",
              shape_str(b.sizes()));
  check_same_dtype(a, b, "matmul");
  check_inner(a, b, "matmul");
  const int64_t da = a.dim(), db = b.dim();
  if (da <= 2 && db <= 2) {
    Tensor a2 = da == 1 ? unsqueeze(a, 0) : a;
    Tensor b2 = db == 1 ? unsqueeze(b, 1) : b;
    Tensor r = mm(a2, b2);
    if (da == 1) r = r.squeeze(0);
    if (db == 1) r = r.squeeze(-1);
    return r;
  }
  if (da >= 3 && db <= 2) {
    // Fold a's batch dims into its rows: one large GEMM instead of many small ones.
    Tensor a2 = reshape(a, {-1, a.sizes()[da - 1]});
    Tensor r = matmul(a2, b);
    Shape shape(a.sizes().begin(), a.sizes().end() - 1);
    if (db == 2) shape.push_back(b.sizes()[1]);
    return reshape(r, shape);
  }
  // General case: broadcast the batch dims, run one batched GEMM.
  Tensor a3 = da == 1 ? unsqueeze(a, 0) : a;
  Tensor b3 = db == 1 ? unsqueeze(b, 1) : b;
  Shape batch_a(a3.sizes().begin(), a3.sizes().end() - 2), batch_b(b3.sizes().begin(), b3.sizes().end() - 2);
  Shape batch = broadcast_shapes(batch_a, batch_b, "matmul");
  const int64_t n = a3.sizes()[a3.dim() - 2], k = a3.sizes()[a3.dim() - 1], m = b3.sizes()[b3.dim() - 1];
  Shape ea = batch, eb = batch;
  ea.insert(ea.end(), {n, k});
  eb.insert(eb.end(), {k, m});
  int64_t B = numel_of(batch);
  Tensor r = gemm(reshape(expand(a3, ea), {B, n, k}), reshape(expand(b3, eb), {B, k, m}), nullptr, 0, 1);
  Shape out = batch;
  if (da > 1) out.push_back(n);
  if (db > 1) out.push_back(m);
  return reshape(r, out);
}

Tensor addmm(const Tensor& bias, const Tensor& a, const Tensor& b, double beta, double alpha) {
  EMBER_CHECK(a.dim() == 2 && b.dim() == 2, InvalidArgument, "[addmm] expected 2-D matrices, got shapes ",
              shape_str(a.sizes()), " and ", shape_str(b.sizes()));
  check_same_dtype(a, b, "addmm");
  check_same_dtype(a, bias, "addmm");
  check_inner(a, b, "addmm");
  Shape out{a.sizes()[0], b.sizes()[1]};
  Shape bs = broadcast_shapes(bias.sizes(), out, "addmm");
  EMBER_CHECK(bs == out, ShapeMismatch, "[addmm] bias of shape ", shape_str(bias.sizes()),
              " does not broadcast to the product's shape ", shape_str(out));
  Tensor c = unsqueeze(expand(bias, out), 0);
  return gemm(unsqueeze(a, 0), unsqueeze(b, 0), &c, beta, alpha).squeeze(0);
}

Tensor linear(const Tensor& x, const Tensor& weight, const std::optional<Tensor>& bias, GemmActivation activation) {
  EMBER_CHECK(weight.dim() == 2, InvalidArgument, "[linear] expected a 2-D weight [out, in], got shape ",
              shape_str(weight.sizes()));
  EMBER_CHECK(x.dim() >= 1 && x.sizes()[x.dim() - 1] == weight.sizes()[1], ShapeMismatch, "[linear] input of shape ",
              shape_str(x.sizes()), " does not end in the weight's in_features ", weight.sizes()[1]);
  if (bias) {
    EMBER_CHECK(bias->dim() == 1 && bias->sizes()[0] == weight.sizes()[0], ShapeMismatch,
                "[linear] expected a bias of shape [", weight.sizes()[0], "], got ", shape_str(bias->sizes()));
  }
  check_same_dtype(x, weight, "linear");
  if (bias) check_same_dtype(x, *bias, "linear");
  EMBER_CHECK(activation != GemmActivation::kGeluTanh || is_floating(x.dtype()), Unsupported,
              "[linear] gelu_tanh expects a floating-point input, got ", x.dtype());
  Tensor x2 = x.dim() == 2 ? x : reshape(x, {-1, x.sizes()[x.dim() - 1]});
  // One product [1, rows, in] @ [1, in, out], the bias broadcast over the rows.
  const Tensor c = bias ? unsqueeze(expand(*bias, {x2.sizes()[0], weight.sizes()[0]}), 0) : Tensor();
  Tensor r = gemm(unsqueeze(x2, 0), unsqueeze(transpose(weight, 0, 1), 0), bias ? &c : nullptr, 1, 1, activation)
                 .squeeze(0);
  if (x.dim() == 2) return r;
  Shape shape(x.sizes().begin(), x.sizes().end() - 1);
  shape.push_back(weight.sizes()[0]);
  return reshape(r, shape);
}

void register_matmul_ops(OpRegistry& r) {
  for (const char* name : {"mm", "bmm", "matmul", "addmm", "linear"})
    r.add("matmul", name, kNumericSet, {.cuda_kernel = true, .backward = true});
}

}  // namespace ember
