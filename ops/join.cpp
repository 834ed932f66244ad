#include "ops/join.h"

#include "ops/copy.h"
#include "ops/register.h"
#include "ops/view.h"
#include "runtime/error.h"

namespace ember {

namespace {

void cat_into(const TensorList& inputs, const Tensor& out, int64_t dim) {
  int64_t offset = 0;
  for (const Tensor& t : inputs) {
    int64_t n = t.sizes()[dim];
    copy_(narrow(out, dim, offset, n), t);
    offset += n;
  }
}

}  // namespace

void CatOp::forward_cpu(const TensorList& inputs, const TensorList& outputs) { cat_into(inputs, outputs[0], dim); }
void CatOp::forward_cuda(const TensorList& inputs, const TensorList& outputs) { cat_into(inputs, outputs[0], dim); }

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim) {
  EMBER_CHECK(!tensors.empty(), InvalidArgument, "[cat] expected a non-empty list of tensors");
  // PyTorch skips legacy empty 1-D tensors of shape [0].
  TensorList parts;
  for (const Tensor& t : tensors) {
    EMBER_CHECK(t.defined(), InvalidArgument, "[cat] got an undefined tensor");
    if (!(t.dim() == 1 && t.sizes()[0] == 0)) parts.push_back(t);
  }
  DType dtype = result_type(TensorList(tensors.begin(), tensors.end()));
  if (parts.empty()) return tensors[0].to(dtype).clone();
  const Tensor& ref = parts[0];
  EMBER_CHECK(ref.dim() > 0, InvalidArgument, "[cat] zero-dimensional tensors cannot be concatenated");
  int64_t d = wrap_dim(dim, ref.dim(), "cat");
  Shape shape = ref.sizes();
  shape[d] = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    const Tensor& t = parts[i];
    EMBER_CHECK(t.dim() == ref.dim(), ShapeMismatch, "[cat] tensors must have the same number of dims: tensor 0 has ",
                ref.dim(), ", tensor ", i, " has ", t.dim());
    for (int64_t k = 0; k < t.dim(); ++k)
      EMBER_CHECK(k == d || t.sizes()[k] == ref.sizes()[k], ShapeMismatch, "[cat] sizes must match except in dim ",
                  d, ": got ", shape_str(ref.sizes()), " and ", shape_str(t.sizes()));
    shape[d] += t.sizes()[d];
  }
  return apply1(std::make_shared<CatOp>(d), parts, {shape, dtype});
}

Tensor stack(const std::vector<Tensor>& tensors, int64_t dim) {
  EMBER_CHECK(!tensors.empty(), InvalidArgument, "[stack] expected a non-empty list of tensors");
  int64_t d = wrap_dim(dim, tensors[0].dim() + 1, "stack");
  std::vector<Tensor> parts;
  for (size_t i = 0; i < tensors.size(); ++i) {
    EMBER_CHECK(tensors[i].sizes() == tensors[0].sizes(), ShapeMismatch, "[stack] expects tensors of equal shape, got ",
                shape_str(tensors[0].sizes()), " at 0 and ", shape_str(tensors[i].sizes()), " at ", i);
    parts.push_back(unsqueeze(tensors[i], d));
  }
  return cat(parts, d);
}

void register_join_ops(OpRegistry& r) {
  r.add("join", "cat", kAllSet, {.cuda_kernel = true, .backward = true});
  r.add("join", "stack", kAllSet, {.cuda_kernel = true, .backward = true});
}

}  // namespace ember
