// PyTorch's tensor repr (torch/_tensor_str.py): the same number formatting (int mode, fixed
// with 4 decimals, or scientific), line width 80, and summaries of large tensors (more than
// 1000 elements show 3 edge items per dim).
#include <cmath>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "ops/copy.h"
#include "ops/view.h"
#include "runtime/tensor.h"

namespace ember {

namespace {

constexpr int kPrecision = 4;
constexpr int kLineWidth = 80;
constexpr int64_t kThreshold = 1000;
constexpr int64_t kEdgeItems = 3;

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, kPrecision, v);
  return buf;
}

std::string nonfinite(double v) { return std::isnan(v) ? "nan" : v > 0 ? "inf" : "-inf"; }

// Decides how every element is written, from the elements that will be shown.
class Formatter {
 public:
  Formatter(DType dtype, const std::vector<double>& shown) : floating_(is_floating(dtype)), bool_(dtype == kBool) {
    if (!floating_) {
      for (double v : shown) width_ = std::max(width_, format_plain(v).size());
      return;
    }
    std::vector<double> vals;
    for (double v : shown)
      if (std::isfinite(v) && v != 0) vals.push_back(v);
    if (vals.empty()) return;
    double mn = INFINITY, mx = 0;
    for (double v : vals) {
      mn = std::min(mn, std::fabs(v));
      mx = std::max(mx, std::fabs(v));
      if (v != std::ceil(v)) int_mode_ = false;
    }
    sci_ = mx / mn > 1000.0 || mx > 1.0e8 || (!int_mode_ && mn < 1.0e-4);
    for (double v : vals) {
      size_t w = sci_ ? fmt("%.*e", v).size() : int_mode_ ? fmt("%.0f", v).size() + 1 : fmt("%.*f", v).size();
      width_ = std::max(width_, w);
    }
  }

  size_t width() const { return width_; }

  std::string format(double v) const {
    std::string s;
    if (!floating_) s = format_plain(v);
    else if (!std::isfinite(v)) s = nonfinite(v);
    else if (sci_) s = fmt("%.*e", v);
    else if (int_mode_) s = fmt("%.0f", v) + ".";
    else s = fmt("%.*f", v);
    return std::string(width_ > s.size() ? width_ - s.size() : 0, ' ') + s;
  }

 private:
  std::string format_plain(double v) const {
    if (bool_) return v != 0 ? "True" : "False";
    return std::to_string(static_cast<long long>(v));
  }

  bool floating_, bool_;
  bool int_mode_ = true, sci_ = false;
  size_t width_ = 1;
};

struct Printer {
  const std::vector<double>& data;  // row-major values
  const Shape& shape;
  bool summarize;

  int64_t stride_of(size_t dim) const {
    int64_t s = 1;
    for (size_t d = dim + 1; d < shape.size(); ++d) s *= shape[d];
    return s;
  }

  // Indices shown along a dim of size n: all, or the edges when summarizing.
  std::vector<int64_t> shown(int64_t n) const {
    std::vector<int64_t> idx;
    if (summarize && n > 2 * kEdgeItems) {
      for (int64_t i = 0; i < kEdgeItems; ++i) idx.push_back(i);
      idx.push_back(-1);  // the "..." marker
      for (int64_t i = n - kEdgeItems; i < n; ++i) idx.push_back(i);
    } else {
      for (int64_t i = 0; i < n; ++i) idx.push_back(i);
    }
    return idx;
  }

  void collect(size_t dim, int64_t base, std::vector<double>& out) const {
    if (dim == shape.size()) {
      out.push_back(data[base]);
      return;
    }
    for (int64_t i : shown(shape[dim]))
      if (i >= 0) collect(dim + 1, base + i * stride_of(dim), out);
  }

  std::string str(size_t dim, int64_t base, int indent, const Formatter& f) const {
    if (dim == shape.size()) return f.format(data[base]);
    const size_t ndim = shape.size() - dim;
    std::vector<std::string> parts;
    for (int64_t i : shown(shape[dim]))
      parts.push_back(i < 0 ? (ndim == 1 ? " ..." : "...") : str(dim + 1, base + i * stride_of(dim), indent + 1, f));
    std::string out = "[";
    if (ndim == 1) {
      const int per_line = std::max(1, (kLineWidth - indent) / static_cast<int>(f.width() + 2));
      for (size_t i = 0; i < parts.size(); ++i) {
        if (i > 0 && i % per_line == 0) out.append(",\n").append(indent + 1, ' ');
        else if (i > 0) out.append(", ");
        out.append(parts[i]);
      }
    } else {
      std::string sep(",");
      sep.append(ndim - 1, '\n').append(indent + 1, ' ');
      for (size_t i = 0; i < parts.size(); ++i) out.append(i ? sep : "").append(parts[i]);
    }
    return out + "]";
  }
};

std::string shape_tuple(const Shape& s) {
  std::string out = "(";
  for (size_t i = 0; i < s.size(); ++i) out.append(i ? ", " : "").append(std::to_string(s[i]));
  return out + (s.size() == 1 ? ",)" : ")");
}

}  // namespace

std::string Tensor::str() const {
  if (!defined()) return "tensor(undefined)";
  std::vector<std::string> suffixes;
  if (!is_cpu()) suffixes.push_back("device='" + device().str() + "'");
  const bool default_dtype = dtype() == kFloat32 || dtype() == kInt64 || dtype() == kBool;
  std::string body;
  if (numel() == 0) {
    if (dim() != 1) suffixes.push_back("size=" + shape_tuple(sizes()));
    if (dtype() != kFloat32) suffixes.push_back(std::string("dtype=") + dtype_name(dtype()));
    body = "[]";
  } else {
    if (!default_dtype) suffixes.push_back(std::string("dtype=") + dtype_name(dtype()));
    // Values as float64 (exact for every dtype but int64 beyond 2^53, which prints rounded).
    Tensor c = to(Device::cpu()).to(kFloat64).contiguous();
    std::vector<double> data(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
    Printer p{data, sizes(), numel() > kThreshold};
    std::vector<double> shown;
    p.collect(0, 0, shown);
    Formatter f(dtype(), shown);
    body = p.str(0, 0, 7, f);
  }
  std::string out = "tensor(" + body;
  for (const std::string& s : suffixes) out += ", " + s;
  return out + ")";
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.str(); }

std::ostream& operator<<(std::ostream& os, const Scalar& s) {
  switch (s.kind()) {
    case Scalar::Kind::Bool: return os << (s.to<bool>() ? "True" : "False");
    case Scalar::Kind::Int: return os << s.to<int64_t>();
    case Scalar::Kind::Float: return os << s.to<double>();
  }
  return os;
}

}  // namespace ember
