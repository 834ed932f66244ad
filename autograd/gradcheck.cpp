#include "autograd/gradcheck.h"

#include <cmath>
#include <sstream>

#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "ops/copy.h"
#include "ops/creation.h"
#include "ops/random.h"
#include "ops/view.h"
#include "runtime/error.h"
#include "runtime/rng.h"

namespace ember {

namespace {

// Row-major float64 values of a tensor, on the host.
std::vector<double> values(const Tensor& t) {
  Tensor c = t.detach().to(Device::cpu()).to(kFloat64).contiguous();
  const double* p = c.data_ptr<double>();
  return std::vector<double>(p, p + c.numel());
}

// fn's outputs with element k of input i moved by delta (inputs copied, not changed).
std::vector<std::vector<double>> evaluate(const GradcheckFn& fn, const TensorList& inputs, size_t i, int64_t k,
                                          double delta) {
  // Fresh leaves (so a function that itself differentiates, as gradgradcheck's does, works).
  TensorList moved;
  for (size_t j = 0; j < inputs.size(); ++j) {
    if (!inputs[j].defined()) {
      moved.push_back(inputs[j]);
      continue;
    }
    Tensor c = inputs[j].detach().clone();
    if (j == i) {
      NoGradGuard no_grad;
      double v = values(c.reshape({-1}).slice(0, k, k + 1))[0];
      fill_(c.reshape({-1}).slice(0, k, k + 1), v + delta);
    }
    if (inputs[j].requires_grad()) c.requires_grad_();
    moved.push_back(c);
  }
  std::vector<std::vector<double>> out;
  for (const Tensor& y : fn(moved)) out.push_back(y.defined() && is_floating(y.dtype()) ? values(y) : std::vector<double>{});
  return out;
}

}  // namespace

std::string gradcheck(const GradcheckFn& fn, const TensorList& inputs, const GradcheckOptions& o) {
  for (const Tensor& x : inputs)
    if (x.defined() && x.requires_grad())
      EMBER_CHECK(x.dtype() == kFloat64, InvalidArgument, "[gradcheck] expected float64 inputs, got ", x.dtype());
  TensorList outputs = fn(inputs);
  std::ostringstream report;
  for (size_t oi = 0; oi < outputs.size(); ++oi) {
    const Tensor& y = outputs[oi];
    if (!y.defined() || !is_floating(y.dtype())) continue;
    const int64_t ny = y.numel();
    // Numerical Jacobian columns, one per input element.
    std::vector<std::vector<std::vector<double>>> numeric(inputs.size());  // [input][elem][out elem]
    for (size_t i = 0; i < inputs.size(); ++i) {
      if (!inputs[i].defined() || !inputs[i].requires_grad()) continue;
      for (int64_t k = 0; k < inputs[i].numel(); ++k) {
        auto plus = evaluate(fn, inputs, i, k, o.eps), minus = evaluate(fn, inputs, i, k, -o.eps);
        std::vector<double> col(ny);
        EMBER_CHECK(oi < plus.size() && oi < minus.size() && static_cast<int64_t>(plus[oi].size()) == ny, Internal,
                    "[gradcheck] the function's outputs changed shape under a perturbation");
        for (int64_t j = 0; j < ny; ++j) col[j] = (plus[oi][j] - minus[oi][j]) / (2 * o.eps);
        numeric[i].push_back(std::move(col));
      }
    }
    // Analytical rows, one backward per output element.
    TensorList checked;
    std::vector<size_t> index;
    for (size_t i = 0; i < inputs.size(); ++i)
      if (inputs[i].defined() && inputs[i].requires_grad()) {
        checked.push_back(inputs[i]);
        index.push_back(i);
      }
    if (checked.empty() || !y.requires_grad()) {
      // No path from the inputs: every numerical derivative must be zero.
      for (size_t c = 0; c < index.size(); ++c)
        for (const auto& col : numeric[index[c]])
          for (double v : col)
            if (std::fabs(v) > o.atol) return str_cat("output ", oi, " does not require grad but depends on input ", index[c]);
      continue;
    }
    for (int64_t j = 0; j < ny; ++j) {
      Tensor seed = zeros(y.sizes(), {y.dtype(), y.device()});
      {
        NoGradGuard no_grad;
        fill_(seed.reshape({-1}).slice(0, j, j + 1), 1.0);
      }
      TensorList g = grad({y}, checked, {seed}, /*retain_graph=*/true, false, /*allow_unused=*/true);
      for (size_t c = 0; c < checked.size(); ++c) {
        std::vector<double> row = g[c].defined() ? values(g[c]) : std::vector<double>(checked[c].numel(), 0.0);
        for (int64_t k = 0; k < static_cast<int64_t>(row.size()); ++k) {
          const double n = numeric[index[c]][k][j], a = row[k];
          if (!(std::fabs(a - n) <= o.atol + o.rtol * std::fabs(n))) {
            report << "Jacobian mismatch for output " << oi << " element " << j << " with respect to input "
                   << index[c] << " element " << k << ": numerical " << n << ", analytical " << a;
            return report.str();
          }
        }
      }
    }
  }
  return "";
}

std::string gradgradcheck(const GradcheckFn& fn, const TensorList& inputs, const GradcheckOptions& o,
                          uint64_t seed) {
  TensorList outputs = fn(inputs);
  Generator gen(seed);
  TensorList grad_outputs;
  for (const Tensor& y : outputs) {
    if (!y.defined() || !is_floating(y.dtype()) || !y.requires_grad()) continue;
    Tensor g = randn(y.sizes(), {kFloat64, y.device()}, &gen);
    g.requires_grad_();
    grad_outputs.push_back(g);
  }
  const size_t n_in = inputs.size();
  GradcheckFn first_order = [&, n_in](const TensorList& all) {
    TensorList xs(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n_in));
    TensorList gs(all.begin() + static_cast<std::ptrdiff_t>(n_in), all.end());
    TensorList ys = fn(xs), used, checked;
    for (const Tensor& y : ys)
      if (y.defined() && is_floating(y.dtype()) && y.requires_grad()) used.push_back(y);
    for (const Tensor& x : xs)
      if (x.defined() && x.requires_grad()) checked.push_back(x);
    if (used.empty() || checked.empty()) return TensorList{};
    return grad(used, checked, gs, true, /*create_graph=*/true, /*allow_unused=*/true);
  };
  TensorList all = inputs;
  all.insert(all.end(), grad_outputs.begin(), grad_outputs.end());
  return gradcheck(first_order, all, o);
}

}  // namespace ember
