#include "ops/grad_util.h"

#include "ops/view.h"

namespace ember {

Tensor sum_to(const Tensor& grad, const Shape& shape) {
  if (grad.sizes() == shape) return grad;
  const int64_t lead = grad.dim() - static_cast<int64_t>(shape.size());
  DimList dims;
  for (int64_t d = 0; d < grad.dim(); ++d)
    if (d < lead || (shape[d - lead] == 1 && grad.sizes()[d] != 1)) dims.push_back(d);
  Tensor r = dims.empty() ? grad : sum(grad, dims, /*keepdim=*/true);
  return reshape(r, shape);
}

Tensor expand_reduced(const Tensor& grad, const Shape& input_shape, const DimList& dims) {
  Tensor g = grad;
  if (g.dim() != static_cast<int64_t>(input_shape.size())) {
    if (dims.empty()) {
      Shape ones(input_shape.size(), 1);
      g = reshape(g, ones);
    } else {
      for (int64_t d : dims) g = unsqueeze(g, d);  // dims are sorted ascending
    }
  }
  return expand(g, input_shape);
}

int64_t reduced_count(const Shape& input_shape, const DimList& dims) {
  int64_t n = 1;
  if (dims.empty()) {
    for (int64_t s : input_shape) n *= s;
  } else {
    for (int64_t d : dims) n *= input_shape[d];
  }
  return n;
}

}  // namespace ember
