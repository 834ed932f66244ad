#include "ops/layout.h"

#include <algorithm>

#include "ops/binary.h"
#include "ops/copy.h"
#include "ops/creation.h"
#include "ops/join.h"
#include "ops/register.h"
#include "ops/view.h"
#include "runtime/error.h"

namespace ember {

namespace {

// Keeps the elements of the last two dims where (col - row) compares to diagonal as `upper`
// asks; zero elsewhere.
Tensor triangle(const Tensor& t, int64_t diagonal, bool upper, const char* op) {
  EMBER_CHECK(t.dim() >= 2, InvalidArgument, "[", op, "] expected a tensor with at least 2 dims, got shape ",
              shape_str(t.sizes()));
  const int64_t n = t.sizes()[t.dim() - 2], m = t.sizes()[t.dim() - 1];
  TensorOptions idx{kInt64, t.device()};
  Tensor diff = sub(unsqueeze(arange(m, idx), 0), unsqueeze(arange(n, idx), 1));  // col - row
  Tensor keep = upper ? ge(diff, diagonal) : le(diff, diagonal);
  return where(keep, t, zeros({}, {t.dtype(), t.device()}));
}

void flip_into(const Tensor& t, const Tensor& out, const std::vector<int64_t>& dims) {
  Strides strides = t.strides();
  int64_t offset = t.storage_offset();
  for (int64_t d : dims) {
    if (t.sizes()[d] == 0) return;
    offset += (t.sizes()[d] - 1) * strides[d];
    strides[d] = -strides[d];
  }
  copy_(out, make_view(t, t.sizes(), strides, offset));
}

void pad_into(const Tensor& t, const Tensor& out, const std::vector<int64_t>& pad, const Scalar& value) {
  fill_(out, value);
  Tensor src = t, dst = out;
  for (size_t i = 0; i < pad.size() / 2; ++i) {
    int64_t d = t.dim() - 1 - static_cast<int64_t>(i);
    int64_t before = pad[2 * i], after = pad[2 * i + 1];
    // Negative pads crop the source; positive ones leave a margin in the destination.
    int64_t src_start = std::max<int64_t>(0, -before);
    int64_t src_len = t.sizes()[d] - src_start - std::max<int64_t>(0, -after);
    if (src_len <= 0) return;
    src = narrow(src, d, src_start, src_len);
    dst = narrow(dst, d, std::max<int64_t>(0, before), src_len);
  }
  copy_(dst, src);
}

}  // namespace

void FlipOp::forward_cpu(const TensorList& in, const TensorList& out) { flip_into(in[0], out[0], dims); }
void FlipOp::forward_cuda(const TensorList& in, const TensorList& out) { flip_into(in[0], out[0], dims); }
void PadOp::forward_cpu(const TensorList& in, const TensorList& out) { pad_into(in[0], out[0], pad, value); }
void PadOp::forward_cuda(const TensorList& in, const TensorList& out) { pad_into(in[0], out[0], pad, value); }

Tensor tril(const Tensor& t, int64_t diagonal) { return triangle(t, diagonal, false, "tril"); }
Tensor triu(const Tensor& t, int64_t diagonal) { return triangle(t, diagonal, true, "triu"); }

Tensor flip(const Tensor& t, const std::vector<int64_t>& dims) {
  std::vector<int64_t> d = reduction_dims(dims, t.dim(), "flip");
  if (dims.empty()) d.clear();  // flip() of no dims is a copy
  return apply1(std::make_shared<FlipOp>(d), {t}, {t.sizes(), t.dtype()});
}

Tensor roll(const Tensor& t, const std::vector<int64_t>& shifts, const std::vector<int64_t>& dims) {
  if (dims.empty()) {
    EMBER_CHECK(shifts.size() == 1, InvalidArgument, "[roll] without dims expects one shift, got ", shifts.size());
    return reshape(roll(flatten(t), shifts, {0}), t.sizes());
  }
  EMBER_CHECK(shifts.size() == dims.size(), InvalidArgument, "[roll] shifts and dims must have the same length, got ",
              shifts.size(), " and ", dims.size());
  Tensor r = t;
  for (size_t i = 0; i < dims.size(); ++i) {
    int64_t d = wrap_dim(dims[i], t.dim(), "roll");
    int64_t n = t.sizes()[d];
    if (n == 0) continue;
    int64_t s = ((shifts[i] % n) + n) % n;
    if (s == 0) continue;
    r = cat({narrow(r, d, n - s, s), narrow(r, d, 0, n - s)}, d);
  }
  return r.is_same(t) ? t.clone() : r;
}

Tensor repeat(const Tensor& t, const std::vector<int64_t>& repeats) {
  EMBER_CHECK(static_cast<int64_t>(repeats.size()) >= t.dim(), InvalidArgument,
              "[repeat] number of repeats (", repeats.size(), ") cannot be smaller than the number of dims (",
              t.dim(), ")");
  for (int64_t r : repeats)
    EMBER_CHECK(r >= 0, InvalidArgument, "[repeat] repeats must be non-negative, got ", list_str(repeats));
  // Pad t's shape with leading 1s, interleave a broadcast dim before each, then merge pairs.
  const size_t n = repeats.size();
  Shape padded(n - t.dim(), 1);
  padded.insert(padded.end(), t.sizes().begin(), t.sizes().end());
  Tensor x = reshape(t, padded);
  Shape inter, expanded, out;
  for (size_t i = 0; i < n; ++i) {
    inter.insert(inter.end(), {1, padded[i]});
    expanded.insert(expanded.end(), {repeats[i], padded[i]});
    out.push_back(repeats[i] * padded[i]);
  }
  return reshape(expand(reshape(x, inter), expanded).contiguous(), out);
}

Tensor pad(const Tensor& t, const std::vector<int64_t>& pad, const Scalar& value) {
  EMBER_CHECK(pad.size() % 2 == 0, InvalidArgument, "[pad] padding length must be even, got ", pad.size());
  EMBER_CHECK(static_cast<int64_t>(pad.size() / 2) <= t.dim(), InvalidArgument, "[pad] padding of length ",
              pad.size(), " is too long for a tensor of ", t.dim(), " dims");
  Shape shape = t.sizes();
  for (size_t i = 0; i < pad.size() / 2; ++i) {
    int64_t d = t.dim() - 1 - static_cast<int64_t>(i);
    shape[d] += pad[2 * i] + pad[2 * i + 1];
    EMBER_CHECK(shape[d] >= 0, InvalidArgument, "[pad] padding ", list_str(pad), " of shape ", shape_str(t.sizes()),
                " gives a negative size in dim ", d);
  }
  return apply1(std::make_shared<PadOp>(pad, value), {t}, {shape, t.dtype()});
}

void register_layout_ops(OpRegistry& r) {
  for (const char* name : {"tril", "triu", "flip", "roll", "repeat", "pad"})
    r.add("layout", name, kAllSet, {.cuda_kernel = true, .backward = true});
}

}  // namespace ember
