#include "ops/index.h"

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "ops/layout.h"
#include "ops/binary.h"
#include "ops/unary.h"
#include "runtime/cuda/cuda.h"

#include "ops/copy.h"
#include "ops/creation.h"
#include "ops/reduce.h"
#include "ops/register.h"
#include "ops/view.h"
#include "runtime/error.h"

namespace ember {

namespace {

Tensor as_index(const Tensor& index, const char* op) {
  EMBER_CHECK(index.dtype() == kInt64 || index.dtype() == kInt32, DTypeMismatch, "[", op,
              "] expected an int64 or int32 index, got ", index.dtype());
  return index.to(kInt64);
}

// Every index must address an element: [0, size). Returns the index to use: itself, or while
// a CUDA graph is captured (where reading it on the host is impossible) the index clamped into
// range, with the check recorded into the graph (cuda::CaptureChecks).
Tensor check_index_range(const Tensor& index, int64_t size, int64_t dim, const char* op) {
  if (index.numel() == 0) return index;
  if (index.is_cuda() && cuda::is_capturing(index.device().index)) {
    cuda::CaptureChecks* checks = cuda::CaptureChecks::current();
    EMBER_CHECK(checks, Unsupported, "[", op, "] checking the index range needs the host, which a CUDA graph capture "
                "cannot reach (capture inside a cuda::CaptureChecks scope)");
    const int32_t code = checks->add(str_cat("[", op, "] an index is out of bounds for dim ", dim, " with size ", size));
    const Tensor failed = any(logical_or(lt(index, 0), ge(index, size)));
    copy_(checks->flag(), where(failed, Scalar(code), checks->flag()));
    return clamp(index, Scalar(0), Scalar(size - 1));
  }
  int64_t lo = amin(index).item<int64_t>(), hi = amax(index).item<int64_t>();
  int64_t bad = lo < 0 ? lo : hi;
  EMBER_CHECK(lo >= 0 && hi < size, InvalidArgument, "[", op, "] index ", bad,
              " is out of bounds for dim ", dim, " with size ", size);
  return index;
}

void check_scatter_shapes(const Tensor& t, int64_t d, const Tensor& index, const Tensor* src, const char* op) {
  EMBER_CHECK(index.dim() == t.dim(), ShapeMismatch, "[", op, "] index must have as many dims as the input (",
              t.dim(), "), got shape ", shape_str(index.sizes()));
  for (int64_t i = 0; i < t.dim(); ++i) {
    EMBER_CHECK(i == d || index.sizes()[i] <= t.sizes()[i], ShapeMismatch, "[", op, "] index of shape ",
                shape_str(index.sizes()), " is larger than the input of shape ", shape_str(t.sizes()),
                " in dim ", i);
    if (src && src->dim() > 0)
      EMBER_CHECK(index.sizes()[i] <= src->sizes()[i], ShapeMismatch, "[", op, "] index of shape ",
                  shape_str(index.sizes()), " is larger than src of shape ", shape_str(src->sizes()), " in dim ", i);
  }
  if (src && src->dim() > 0)
    EMBER_CHECK(src->dim() == t.dim(), ShapeMismatch, "[", op, "] src must have as many dims as the input (",
                t.dim(), "), got shape ", shape_str(src->sizes()));
}

const Tensor& scatter_into(const Tensor& t, int64_t dim, const Tensor& index, const Tensor& src, bool accumulate) {
  const char* op = accumulate ? "scatter_add" : "scatter";
  Tensor idx = as_index(index, op);
  int64_t d = wrap_dim(dim, t.dim(), op);
  check_scatter_shapes(t, d, idx, &src, op);
  if (t.dim() > 0) idx = check_index_range(idx, t.sizes()[d], d, op);
  Tensor s = src.to(t.dtype());
  if (s.dim() > 0) {
    // Only the part of src that index covers is read.
    for (int64_t i = 0; i < s.dim(); ++i) s = narrow(s, i, 0, idx.sizes()[i]);
  }
  if (s.shares_storage(t)) s = s.clone();
  apply_into(std::make_shared<ScatterOp>(d, accumulate), {idx, s}, {t});
  return t;
}

}  // namespace

Tensor index_select(const Tensor& t, int64_t dim, const Tensor& index) {
  Tensor idx = as_index(index, "index_select");
  EMBER_CHECK(idx.dim() <= 1, InvalidArgument, "[index_select] expected a 1-D index, got shape ",
              shape_str(idx.sizes()));
  int64_t d = wrap_dim(dim, t.dim(), "index_select");
  int64_t size = t.dim() == 0 ? 1 : t.sizes()[d];
  idx = check_index_range(idx, size, d, "index_select");
  if (t.dim() == 0) return t.clone().reshape(idx.dim() == 0 ? Shape{} : Shape{idx.numel()});
  Shape shape = t.sizes();
  shape[d] = idx.numel();
  return apply1(std::make_shared<IndexSelectOp>(d), {t, idx.reshape({-1})}, {shape, t.dtype()});
}

Tensor gather(const Tensor& t, int64_t dim, const Tensor& index) {
  Tensor idx = as_index(index, "gather");
  int64_t d = wrap_dim(dim, t.dim(), "gather");
  check_scatter_shapes(t, d, idx, nullptr, "gather");
  if (t.dim() == 0) {
    idx = check_index_range(idx, 1, 0, "gather");
    return t.clone();
  }
  idx = check_index_range(idx, t.sizes()[d], d, "gather");
  return apply1(std::make_shared<GatherOp>(d), {t, idx}, {idx.sizes(), t.dtype()});
}

const Tensor& scatter_(const Tensor& t, int64_t dim, const Tensor& index, const Tensor& src) {
  return scatter_into(t, dim, index, src, false);
}
const Tensor& scatter_add_(const Tensor& t, int64_t dim, const Tensor& index, const Tensor& src) {
  EMBER_CHECK(t.dtype() != kBool, Unsupported, "[scatter_add] not supported for dtype bool");
  return scatter_into(t, dim, index, src, true);
}

namespace {

// The gradient reaching src of a scatter: the gathered gradient, zero-padded where src is
// larger than the index (those elements were not read).
Tensor scattered_src_grad(const Tensor& g, int64_t d, const Tensor& idx, const Shape& src_shape) {
  Tensor r = gather(g, d, idx);
  if (r.sizes() == src_shape) return r;
  std::vector<int64_t> pads;
  for (int64_t i = static_cast<int64_t>(src_shape.size()) - 1; i >= 0; --i) {
    pads.push_back(0);
    pads.push_back(src_shape[i] - r.sizes()[i]);
  }
  return pad(r, pads);
}

// Out-of-place scatter/scatter_add: the write runs unrecorded on a copy, and one node
// records the whole op.
Tensor scatter_recorded(const Tensor& t, int64_t dim, const Tensor& index, const Tensor& src, bool accumulate) {
  Tensor out;
  {
    NoGradGuard no_grad;
    out = t.clone();
    scatter_into(out, dim, index, src, accumulate);
  }
  const int64_t d = wrap_dim(dim, t.dim(), accumulate ? "scatter_add" : "scatter");
  Tensor idx = as_index(index, "scatter");
  const Shape src_shape = src.sizes();
  const bool src_scalar = src.dim() == 0;
  autograd::record_function(accumulate ? "scatter_add" : "scatter", {t, src}, {out},
                            [d, idx, src_shape, src_scalar, accumulate](const TensorList& g) {
                              if (!g[0].defined()) return TensorList{Tensor(), Tensor()};
                              Tensor gt = accumulate ? g[0] : scatter(g[0], d, idx, Scalar(0.0));
                              Tensor gs = src_scalar ? sum(gather(g[0], d, idx))
                                                     : scattered_src_grad(g[0], d, idx, src_shape);
                              return TensorList{gt, gs};
                            });
  return out;
}

}  // namespace

Tensor scatter(const Tensor& t, int64_t dim, const Tensor& index, const Tensor& src) {
  return scatter_recorded(t, dim, index, src, false);
}

Tensor scatter(const Tensor& t, int64_t dim, const Tensor& index, const Scalar& value) {
  return scatter(t, dim, index, full({}, value, {t.dtype(), t.device()}));
}

Tensor scatter_add(const Tensor& t, int64_t dim, const Tensor& index, const Tensor& src) {
  EMBER_CHECK(t.dtype() != kBool, Unsupported, "[scatter_add] not supported for dtype bool");
  return scatter_recorded(t, dim, index, src, true);
}

Tensor masked_fill(const Tensor& t, const Tensor& mask, const Operand& value) {
  EMBER_CHECK(mask.dtype() == kBool, DTypeMismatch, "[masked_fill] expected a bool mask, got ", mask.dtype());
  const Tensor& v = value.tensor();
  EMBER_CHECK(v.dim() == 0, InvalidArgument, "[masked_fill] expected a number or a 0-d value, got shape ",
              shape_str(v.sizes()));
  Shape shape = broadcast_shapes(t.sizes(), mask.sizes(), "masked_fill");
  EMBER_CHECK(shape == t.sizes(), ShapeMismatch, "[masked_fill] mask of shape ", shape_str(mask.sizes()),
              " does not broadcast to the input's shape ", shape_str(t.sizes()));
  // The value takes the input's dtype (a 0-d tensor, not a wrapped number, so no promotion).
  Tensor fill = cast(v, t.dtype());
  return where(mask, fill, t);
}

void register_index_ops(OpRegistry& r) {
  OpSupport s{.cuda_kernel = true, .backward = true};
  r.add("index", "index_select", kAllSet, s);
  r.add("index", "gather", kAllSet, s);
  r.add("index", "scatter", kAllSet, s);
  r.add("index", "scatter_add", kNumericSet, s);
  r.add("index", "index_add_rows", kFloatingSet, s);
  r.add("index", "masked_fill", kAllSet, {.cuda_kernel = true, .backward = true});
}

}  // namespace ember
