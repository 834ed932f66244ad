// Gradient checks: an op's backward against float64 central differences, like
// torch.autograd.gradcheck and gradgradcheck (same default tolerances).
#pragma once

#include <functional>
#include <string>

#include "runtime/tensor.h"

namespace ember {

struct GradcheckOptions {
  double eps = 1e-6;
  double atol = 1e-5;
  double rtol = 1e-3;
};

using GradcheckFn = std::function<TensorList(const TensorList&)>;

/// Compares the Jacobian that backward gives for fn at `inputs` (float64 tensors; those that
/// require grad are checked) with central differences. Returns an empty string when every
/// entry agrees within atol + rtol * |numerical|, else a description of the first mismatch.
std::string gradcheck(const GradcheckFn& fn, const TensorList& inputs, const GradcheckOptions& options = {});

/// gradcheck of the gradient itself: checks the backward of backward (create_graph) with
/// random float64 output gradients drawn from `seed`.
std::string gradgradcheck(const GradcheckFn& fn, const TensorList& inputs, const GradcheckOptions& options = {},
                          uint64_t seed = 0);

}  // namespace ember
