#include "ops/view.h"

#include <algorithm>
#include <string_view>

#include "autograd/node.h"
#include "ops/binary.h"
#include "ops/creation.h"
#include "ops/grad_util.h"
#include "ops/index.h"
#include "ops/unary.h"
#include "ops/layout.h"
#include "ops/register.h"
#include "runtime/error.h"

namespace ember {

Shape infer_size(const Shape& shape, int64_t numel, const char* op) {
  Shape out = shape;
  int64_t known = 1;
  std::optional<size_t> infer;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      EMBER_CHECK(!infer, InvalidArgument, "[", op, "] only one dimension can be inferred, got shape ",
                  shape_str(shape));
      infer = i;
    } else {
      EMBER_CHECK(shape[i] >= 0, InvalidArgument, "[", op, "] invalid shape dimension ", shape[i],
                  " in ", shape_str(shape));
      EMBER_CHECK(!__builtin_mul_overflow(known, shape[i], &known), InvalidArgument, "[", op, "] shape ",
                  shape_str(shape), " is invalid for input of size ", numel);
    }
  }
  if (infer) {
    EMBER_CHECK(known != 0 && numel % known == 0, InvalidArgument, "[", op, "] shape ",
                shape_str(shape), " is invalid for input of size ", numel);
    out[*infer] = numel / known;
  } else {
    EMBER_CHECK(known == numel, InvalidArgument, "[", op, "] shape ", shape_str(shape),
                " is invalid for input of size ", numel);
  }
  return out;
}

namespace {

// Strides that let `new_shape` view memory laid out as (old_shape, old_strides), if any
// (PyTorch's computeStride): each run of dims that is contiguous in memory may be re-split.
std::optional<Strides> view_strides(const Shape& old_shape, const Strides& old_strides,
                                    const Shape& new_shape) {
  if (old_shape.empty()) return contiguous_strides(new_shape);
  if (numel_of(old_shape) == 0) return contiguous_strides(new_shape);
  Strides out(new_shape.size());
  int64_t view_d = static_cast<int64_t>(new_shape.size()) - 1;
  int64_t chunk_base_stride = old_strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t d = static_cast<int64_t>(old_shape.size()) - 1; d >= 0; --d) {
    tensor_numel *= old_shape[d];
    bool chunk_end = d == 0 || (old_shape[d - 1] != 1 && old_strides[d - 1] != tensor_numel * chunk_base_stride);
    if (!chunk_end) continue;
    while (view_d >= 0 && (view_numel < tensor_numel || new_shape[view_d] == 1)) {
      out[view_d] = view_numel * chunk_base_stride;
      view_numel *= new_shape[view_d];
      --view_d;
    }
    if (view_numel != tensor_numel) return std::nullopt;
    if (d > 0) {
      chunk_base_stride = old_strides[d - 1];
      tensor_numel = 1;
      view_numel = 1;
    }
  }
  if (view_d != -1) return std::nullopt;
  return out;
}

}  // namespace

namespace {

// Views run no op, so each records its own backward when its input requires grad. The
// backward captures shapes, not tensors, so a view keeps nothing alive.
Tensor recorded(Tensor out, const Tensor& in, const char* name, std::function<Tensor(const Tensor&)> backward) {
  if (autograd::any_requires_grad({in}))
    autograd::record_function(name, {in}, {out}, [backward = std::move(backward)](const TensorList& g) {
      return TensorList{g[0].defined() ? backward(g[0]) : Tensor()};
    });
  return out;
}

// F.pad's list for padding only dim d of an n-dim tensor by (before, after).
std::vector<int64_t> pad_one_dim(int64_t n, int64_t d, int64_t before, int64_t after) {
  std::vector<int64_t> p(static_cast<size_t>(2 * (n - d)), 0);
  p[p.size() - 2] = before;
  p[p.size() - 1] = after;
  return p;
}

// The gradient of t.slice(d, start, ..., step) (of size m along d) for t of shape `in`: g's
// rows spread `step` apart (zeros between) and placed at `start`, all with pad/reshape so the
// result is differentiable again.
Tensor slice_backward(const Tensor& g, const Shape& in, int64_t d, int64_t start, int64_t step) {
  const int64_t n = static_cast<int64_t>(in.size()), m = g.sizes()[d];
  Tensor spread = g;
  if (step > 1 && m > 0) {
    Tensor u = unsqueeze(g, d + 1);
    u = pad(u, pad_one_dim(n + 1, d + 1, 0, step - 1));
    Shape merged = g.sizes();
    merged[d] = m * step;
    spread = reshape(u, merged);
  }
  const int64_t covered = spread.sizes()[d];
  return pad(spread, pad_one_dim(n, d, start, in[d] - start - covered));
}

}  // namespace

Tensor view(const Tensor& t, const Shape& shape) {
  Shape s = infer_size(shape, t.numel(), "view");
  std::optional<Strides> st = view_strides(t.sizes(), t.strides(), s);
  EMBER_CHECK(st.has_value(), InvalidArgument, "[view] shape ", shape_str(s),
              " is not compatible with the input's size ", shape_str(t.sizes()), " and stride ",
              list_str(t.strides()), " (a dimension spans two non-contiguous subspaces); use reshape");
  Shape in = t.sizes();
  return recorded(make_view(t, s, *st, t.storage_offset()), t, "view", [in](const Tensor& g) { return reshape(g, in); });
}

Tensor reshape(const Tensor& t, const Shape& shape) {
  Shape s = infer_size(shape, t.numel(), "reshape");
  if (std::optional<Strides> st = view_strides(t.sizes(), t.strides(), s)) {
    Shape in = t.sizes();
    return recorded(make_view(t, s, *st, t.storage_offset()), t, "reshape",
                    [in](const Tensor& g) { return reshape(g, in); });
  }
  return view(t.clone(), s);
}

Tensor flatten(const Tensor& t, int64_t start_dim, int64_t end_dim) {
  if (t.dim() == 0) return reshape(t, {1});
  int64_t s = wrap_dim(start_dim, t.dim(), "flatten"), e = wrap_dim(end_dim, t.dim(), "flatten");
  EMBER_CHECK(s <= e, InvalidArgument, "[flatten] start_dim ", start_dim, " comes after end_dim ", end_dim);
  Shape shape(t.sizes().begin(), t.sizes().begin() + s);
  int64_t merged = 1;
  for (int64_t d = s; d <= e; ++d) merged *= t.sizes()[d];
  shape.push_back(merged);
  shape.insert(shape.end(), t.sizes().begin() + e + 1, t.sizes().end());
  return reshape(t, shape);
}

Tensor unflatten(const Tensor& t, int64_t dim, const Shape& sizes) {
  int64_t d = wrap_dim(dim, t.dim(), "unflatten");
  EMBER_CHECK(!sizes.empty(), InvalidArgument, "[unflatten] sizes must be non-empty");
  Shape inner = infer_size(sizes, t.sizes()[d], "unflatten");
  Shape shape(t.sizes().begin(), t.sizes().begin() + d);
  shape.insert(shape.end(), inner.begin(), inner.end());
  shape.insert(shape.end(), t.sizes().begin() + d + 1, t.sizes().end());
  return view(t, shape);
}

Tensor permute(const Tensor& t, const std::vector<int64_t>& dims) {
  EMBER_CHECK(static_cast<int64_t>(dims.size()) == t.dim(), InvalidArgument, "[permute] expected ",
              t.dim(), " dims for a tensor of shape ", shape_str(t.sizes()), ", got ", list_str(dims));
  Shape sizes(dims.size());
  Strides strides(dims.size());
  std::vector<bool> seen(dims.size());
  for (size_t i = 0; i < dims.size(); ++i) {
    int64_t d = wrap_dim(dims[i], t.dim(), "permute");
    EMBER_CHECK(!seen[d], InvalidArgument, "[permute] dim ", d, " repeats in ", list_str(dims));
    seen[d] = true;
    sizes[i] = t.sizes()[d];
    strides[i] = t.strides()[d];
  }
  std::vector<int64_t> inverse(dims.size());
  for (size_t i = 0; i < dims.size(); ++i) inverse[wrap_dim(dims[i], t.dim(), "permute")] = static_cast<int64_t>(i);
  return recorded(make_view(t, sizes, strides, t.storage_offset()), t, "permute",
                  [inverse](const Tensor& g) { return permute(g, inverse); });
}

Tensor transpose(const Tensor& t, int64_t dim0, int64_t dim1) {
  if (t.dim() == 0)
    return recorded(make_view(t, {}, {}, t.storage_offset()), t, "transpose", [](const Tensor& g) { return g; });
  int64_t a = wrap_dim(dim0, t.dim(), "transpose"), b = wrap_dim(dim1, t.dim(), "transpose");
  Shape sizes = t.sizes();
  Strides strides = t.strides();
  std::swap(sizes[a], sizes[b]);
  std::swap(strides[a], strides[b]);
  return recorded(make_view(t, sizes, strides, t.storage_offset()), t, "transpose",
                  [a, b](const Tensor& g) { return transpose(g, a, b); });
}

Tensor squeeze(const Tensor& t, std::optional<int64_t> dim) {
  Shape sizes;
  Strides strides;
  const int64_t only = dim ? wrap_dim(*dim, t.dim(), "squeeze") : -1;  // -1: every size-1 dim
  for (int64_t d = 0; d < t.dim(); ++d) {
    bool drop = t.sizes()[d] == 1 && (only < 0 || only == d);
    if (drop) continue;
    sizes.push_back(t.sizes()[d]);
    strides.push_back(t.strides()[d]);
  }
  Shape in = t.sizes();
  return recorded(make_view(t, sizes, strides, t.storage_offset()), t, "squeeze",
                  [in](const Tensor& g) { return reshape(g, in); });
}

Tensor unsqueeze(const Tensor& t, int64_t dim) {
  int64_t d = wrap_dim(dim, t.dim() + 1, "unsqueeze");
  Shape sizes = t.sizes();
  Strides strides = t.strides();
  int64_t stride = d < t.dim() ? sizes[d] * strides[d] : 1;
  sizes.insert(sizes.begin() + d, 1);
  strides.insert(strides.begin() + d, stride);
  Shape in = t.sizes();
  return recorded(make_view(t, sizes, strides, t.storage_offset()), t, "unsqueeze",
                  [in](const Tensor& g) { return reshape(g, in); });
}

Tensor expand(const Tensor& t, const Shape& shape) {
  EMBER_CHECK(static_cast<int64_t>(shape.size()) >= t.dim(), InvalidArgument, "[expand] the target shape ",
              shape_str(shape), " has fewer dims than the tensor's shape ", shape_str(t.sizes()));
  const int64_t lead = static_cast<int64_t>(shape.size()) - t.dim();
  Shape sizes(shape.size());
  Strides strides(shape.size());
  for (int64_t d = 0; d < static_cast<int64_t>(shape.size()); ++d) {
    if (d < lead) {
      EMBER_CHECK(shape[d] >= 0, InvalidArgument, "[expand] -1 is not allowed for a new leading dim in ",
                  shape_str(shape));
      sizes[d] = shape[d];
      strides[d] = 0;
      continue;
    }
    int64_t have = t.sizes()[d - lead];
    int64_t want = shape[d] == -1 ? have : shape[d];
    EMBER_CHECK(want == have || have == 1, ShapeMismatch, "[expand] the size ", have, " of dim ", d - lead,
                " must match the target size ", want, " (only size-1 dims expand); shape ",
                shape_str(t.sizes()), " to ", shape_str(shape));
    EMBER_CHECK(want >= 0, InvalidArgument, "[expand] invalid target size ", want);
    sizes[d] = want;
    strides[d] = (have == 1 && want != 1) ? 0 : t.strides()[d - lead];
  }
  Shape in = t.sizes();
  return recorded(make_view(t, sizes, strides, t.storage_offset()), t, "expand",
                  [in](const Tensor& g) { return sum_to(g, in); });
}

Tensor expand_as(const Tensor& t, const Tensor& other) { return expand(t, other.sizes()); }

Tensor slice(const Tensor& t, int64_t dim, std::optional<int64_t> start, std::optional<int64_t> end,
             int64_t step) {
  EMBER_CHECK(t.dim() > 0, InvalidArgument, "[slice] cannot slice a 0-d tensor");
  int64_t d = wrap_dim(dim, t.dim(), "slice");
  EMBER_CHECK(step > 0, InvalidArgument, "[slice] step must be positive, got ", step);
  const int64_t n = t.sizes()[d];
  auto clamp_index = [n](int64_t i) { return std::clamp<int64_t>(i < 0 ? i + n : i, 0, n); };
  int64_t s = start ? clamp_index(*start) : 0;
  int64_t e = end ? clamp_index(*end) : n;
  int64_t len = e > s ? (e - s + step - 1) / step : 0;
  Shape sizes = t.sizes();
  Strides strides = t.strides();
  sizes[d] = len;
  strides[d] *= step;
  Shape in = t.sizes();
  return recorded(make_view(t, sizes, strides, t.storage_offset() + s * t.strides()[d]), t, "slice",
                  [in, d, s, step](const Tensor& g) { return slice_backward(g, in, d, s, step); });
}

Tensor select(const Tensor& t, int64_t dim, int64_t index) {
  EMBER_CHECK(t.dim() > 0, InvalidArgument, "[select] cannot select from a 0-d tensor");
  int64_t d = wrap_dim(dim, t.dim(), "select");
  const int64_t n = t.sizes()[d];
  EMBER_CHECK(index >= -n && index < n, InvalidArgument, "[select] index ", index,
              " is out of range for dim ", d, " of size ", n);
  if (index < 0) index += n;
  Shape sizes = t.sizes();
  Strides strides = t.strides();
  int64_t offset = t.storage_offset() + index * strides[d];
  sizes.erase(sizes.begin() + d);
  strides.erase(strides.begin() + d);
  Shape in = t.sizes();
  return recorded(make_view(t, sizes, strides, offset), t, "select",
                  [in, d, index](const Tensor& g) { return slice_backward(unsqueeze(g, d), in, d, index, 1); });
}

Tensor narrow(const Tensor& t, int64_t dim, int64_t start, int64_t length) {
  EMBER_CHECK(t.dim() > 0, InvalidArgument, "[narrow] cannot narrow a 0-d tensor");
  int64_t d = wrap_dim(dim, t.dim(), "narrow");
  const int64_t n = t.sizes()[d];
  if (start < 0) start += n;
  EMBER_CHECK(start >= 0 && length >= 0 && start + length <= n, InvalidArgument, "[narrow] start ",
              start, " and length ", length, " reach outside dim ", d, " of size ", n);
  return slice(t, d, start, start + length);
}

std::vector<Tensor> split(const Tensor& t, int64_t split_size, int64_t dim) {
  EMBER_CHECK(t.dim() > 0, InvalidArgument, "[split] cannot split a 0-d tensor");
  int64_t d = wrap_dim(dim, t.dim(), "split");
  EMBER_CHECK(split_size > 0 || (split_size == 0 && t.sizes()[d] == 0), InvalidArgument,
              "[split] split_size must be positive, got ", split_size);
  const int64_t n = t.sizes()[d];
  std::vector<Tensor> out;
  if (n == 0) return {t};
  for (int64_t s = 0; s < n; s += split_size) out.push_back(narrow(t, d, s, std::min(split_size, n - s)));
  return out;
}

std::vector<Tensor> split(const Tensor& t, const std::vector<int64_t>& sizes, int64_t dim) {
  EMBER_CHECK(t.dim() > 0, InvalidArgument, "[split] cannot split a 0-d tensor");
  int64_t d = wrap_dim(dim, t.dim(), "split");
  int64_t total = 0;
  for (int64_t s : sizes) {
    EMBER_CHECK(s >= 0, InvalidArgument, "[split] split sizes must be non-negative, got ", list_str(sizes));
    total += s;
  }
  EMBER_CHECK(total == t.sizes()[d], InvalidArgument, "[split] split sizes ", list_str(sizes), " sum to ",
              total, " but dim ", d, " has size ", t.sizes()[d]);
  std::vector<Tensor> out;
  int64_t start = 0;
  for (int64_t s : sizes) {
    out.push_back(narrow(t, d, start, s));
    start += s;
  }
  return out;
}

std::vector<Tensor> chunk(const Tensor& t, int64_t chunks, int64_t dim) {
  EMBER_CHECK(chunks > 0, InvalidArgument, "[chunk] chunks must be positive, got ", chunks);
  EMBER_CHECK(t.dim() > 0, InvalidArgument, "[chunk] cannot chunk a 0-d tensor");
  int64_t d = wrap_dim(dim, t.dim(), "chunk");
  int64_t size = (t.sizes()[d] + chunks - 1) / chunks;
  if (size == 0) {  // a zero-size dim: `chunks` empty pieces, like PyTorch
    return std::vector<Tensor>(chunks, t);
  }
  return split(t, size, d);
}

std::vector<Tensor> unbind(const Tensor& t, int64_t dim) {
  EMBER_CHECK(t.dim() > 0, InvalidArgument, "[unbind] cannot unbind a 0-d tensor");
  int64_t d = wrap_dim(dim, t.dim(), "unbind");
  std::vector<Tensor> out;
  for (int64_t i = 0; i < t.sizes()[d]; ++i) out.push_back(select(t, d, i));
  return out;
}

namespace {

// One past the last storage element a geometry reaches (0 when it has no elements).
int64_t storage_extent(const Shape& sizes, const Strides& strides, int64_t offset) {
  int64_t last = offset;
  for (size_t d = 0; d < sizes.size(); ++d) {
    if (sizes[d] == 0) return 0;
    last += (sizes[d] - 1) * strides[d];
  }
  return last + 1;
}

// as_strided's gradient, written with public ops: the output's gradient is summed into the
// storage positions it views (scatter_add over storage indices, which as_strided of an arange
// yields), then read back through the input's geometry. Where the input itself views a storage
// element several times (an expanded input), the element's gradient is shared among them, as
// PyTorch does.
Tensor as_strided_backward(const Tensor& grad, const Shape& in_sizes, const Strides& in_strides, int64_t in_off,
                           const Shape& out_sizes, const Strides& out_strides, int64_t out_off) {
  const int64_t length = std::max(storage_extent(in_sizes, in_strides, in_off),
                                  storage_extent(out_sizes, out_strides, out_off));
  Tensor positions = arange(length, {kInt64, grad.device()});
  Tensor out_index = as_strided(positions, out_sizes, out_strides, out_off).reshape({-1});
  Tensor in_index = as_strided(positions, in_sizes, in_strides, in_off).reshape({-1});
  Tensor flat = zeros({length}, {grad.dtype(), grad.device()});
  flat = scatter_add(flat, 0, out_index, grad.reshape({-1}));
  Tensor uses = scatter_add(zeros({length}, {grad.dtype(), grad.device()}), 0, in_index,
                            ones({in_index.numel()}, {grad.dtype(), grad.device()}));
  flat = div(flat, clamp(uses, 1.0, std::nullopt));
  return index_select(flat, 0, in_index).reshape(in_sizes);
}

}  // namespace

Tensor as_strided(const Tensor& t, const Shape& sizes, const Strides& strides, std::optional<int64_t> offset) {
  EMBER_CHECK(sizes.size() == strides.size(), InvalidArgument, "[as_strided] ", sizes.size(),
              " sizes but ", strides.size(), " strides");
  int64_t off = offset.value_or(t.storage_offset());
  EMBER_CHECK(off >= 0, InvalidArgument, "[as_strided] negative offset ", off);
  int64_t n = checked_numel(sizes, "as_strided");
  int64_t last = off;
  for (size_t d = 0; d < sizes.size(); ++d) {
    EMBER_CHECK(strides[d] >= 0, InvalidArgument, "[as_strided] negative stride in ", list_str(strides));
    if (n > 0) last += (sizes[d] - 1) * strides[d];
  }
  EMBER_CHECK(n == 0 || (last + 1) * static_cast<int64_t>(t.itemsize()) <=
                            static_cast<int64_t>(t.storage()->nbytes()),
              InvalidArgument, "[as_strided] sizes ", shape_str(sizes), " and strides ", list_str(strides),
              " at offset ", off, " reach outside the storage of ", t.storage()->nbytes(), " bytes");
  Tensor out = make_view(t, sizes, strides, off);
  return recorded(out, t, "as_strided",
                  [in_sizes = t.sizes(), in_strides = t.strides(), in_off = t.storage_offset(), sizes, strides,
                   off](const Tensor& grad) { return as_strided_backward(grad, in_sizes, in_strides, in_off, sizes,
                                                                        strides, off); });
}

// ---- Tensor methods ---------------------------------------------------------------------------

Tensor Tensor::view(const Shape& shape) const { return ember::view(*this, shape); }
Tensor Tensor::reshape(const Shape& shape) const { return ember::reshape(*this, shape); }
Tensor Tensor::transpose(int64_t a, int64_t b) const { return ember::transpose(*this, a, b); }
Tensor Tensor::permute(const std::vector<int64_t>& dims) const { return ember::permute(*this, dims); }
Tensor Tensor::expand(const Shape& shape) const { return ember::expand(*this, shape); }
Tensor Tensor::squeeze(std::optional<int64_t> dim) const { return ember::squeeze(*this, dim); }
Tensor Tensor::unsqueeze(int64_t dim) const { return ember::unsqueeze(*this, dim); }
Tensor Tensor::select(int64_t dim, int64_t index) const { return ember::select(*this, dim, index); }
Tensor Tensor::slice(int64_t dim, std::optional<int64_t> start, std::optional<int64_t> end,
                     int64_t step) const {
  return ember::slice(*this, dim, start, end, step);
}

void register_view_ops(OpRegistry& r) {
  for (const char* name : {"view", "reshape", "flatten", "unflatten", "permute", "transpose", "squeeze",
                           "unsqueeze", "expand", "slice", "select", "narrow", "split", "chunk", "unbind",
                           "as_strided"})
    r.add("view", name, kAllSet, {.cuda_kernel = true, .backward = true});
}

}  // namespace ember
