#include "tests/harness.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <sstream>

namespace ember::test {

const std::vector<DType> kFloatTypes = {kFloat32, kFloat64, kFloat16, kBFloat16};
const std::vector<DType> kIntTypes = {kUInt8, kInt8, kInt32, kInt64};
const std::vector<DType> kEveryType = {kBool,    kUInt8,    kInt8,    kInt32,  kInt64,
                                       kFloat16, kBFloat16, kFloat32, kFloat64};

bool cuda_available() {
  static const bool available = cuda_device_count() > 0;
  return available;
}

double Ref::at(const std::vector<int64_t>& idx) const {
  int64_t flat = 0;
  for (size_t d = 0; d < shape.size(); ++d) flat = flat * shape[d] + idx[d];
  return v[flat];
}

Ref to_ref(const Tensor& t) {
  Tensor c = t.to(Device::cpu()).to(kFloat64).contiguous();
  const double* p = c.data_ptr<double>();
  return {t.sizes(), std::vector<double>(p, p + c.numel())};
}

Tensor from_ref(const Ref& r, DType dtype, Device device) {
  return from_vector(r.v, r.shape, {dtype, device});
}

namespace {

double round_value(double x, DType dtype) {
  switch (dtype) {
    case kFloat32: return static_cast<double>(static_cast<float>(x));
    case kFloat16: return static_cast<double>(static_cast<float>(Eigen::half(static_cast<float>(x))));
    case kBFloat16: return static_cast<double>(static_cast<float>(Eigen::bfloat16(static_cast<float>(x))));
    case kBool: return x != 0 ? 1 : 0;
    default: return x;  // integers: tests only use values the dtype holds
  }
}

// Multi-index of a flat row-major position.
std::vector<int64_t> unravel(int64_t flat, const Shape& shape) {
  std::vector<int64_t> idx(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    idx[d] = flat % shape[d];
    flat /= shape[d];
  }
  return idx;
}

Shape broadcast(const Shape& a, const Shape& b) {
  size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t sa = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t sb = i < n - b.size() ? 1 : b[i - (n - b.size())];
    REQUIRE((sa == sb || sa == 1 || sb == 1));
    out[i] = sa == 1 ? sb : sa;
  }
  return out;
}

// Value of r at an index of a broadcast shape.
double at_broadcast(const Ref& r, const std::vector<int64_t>& idx) {
  std::vector<int64_t> own(r.shape.size());
  size_t lead = idx.size() - r.shape.size();
  for (size_t d = 0; d < r.shape.size(); ++d) own[d] = r.shape[d] == 1 ? 0 : idx[d + lead];
  return r.at(own);
}

}  // namespace

Ref round_to(const Ref& r, DType dtype) {
  return map_ref(r, [dtype](double x) { return round_value(x, dtype); });
}

Ref map_ref(const Ref& a, const std::function<double(double)>& f) {
  Ref out{a.shape, a.v};
  for (double& x : out.v) x = f(x);
  return out;
}

Ref zip_ref(const Ref& a, const Ref& b, const std::function<double(double, double)>& f) {
  Ref out{broadcast(a.shape, b.shape), {}};
  int64_t n = numel_of(out.shape);
  out.v.resize(n);
  for (int64_t i = 0; i < n; ++i) {
    auto idx = unravel(i, out.shape);
    out.v[i] = f(at_broadcast(a, idx), at_broadcast(b, idx));
  }
  return out;
}

Ref reduce_ref(const Ref& a, std::vector<int64_t> dims, bool keepdim,
           const std::function<double(const std::vector<double>&)>& f) {
  const int64_t nd = static_cast<int64_t>(a.shape.size());
  if (dims.empty())
    for (int64_t d = 0; d < nd; ++d) dims.push_back(d);
  for (int64_t& d : dims) d = d < 0 ? d + nd : d;
  std::sort(dims.begin(), dims.end());
  auto reduced = [&](int64_t d) { return std::binary_search(dims.begin(), dims.end(), d); };
  Shape kept_shape, out_shape;
  for (int64_t d = 0; d < nd; ++d) {
    if (!reduced(d)) kept_shape.push_back(a.shape[d]);
    if (!reduced(d)) out_shape.push_back(a.shape[d]);
    else if (keepdim) out_shape.push_back(1);
  }
  const int64_t n_out = numel_of(kept_shape);
  std::vector<std::vector<double>> groups(n_out);
  for (int64_t i = 0; i < a.numel(); ++i) {
    auto idx = unravel(i, a.shape);
    int64_t o = 0;
    for (int64_t d = 0; d < nd; ++d)
      if (!reduced(d)) o = o * a.shape[d] + idx[d];
    groups[o].push_back(a.v[i]);
  }
  Ref out{out_shape, std::vector<double>(n_out)};
  for (int64_t o = 0; o < n_out; ++o) out.v[o] = f(groups[o]);
  return out;
}

Ref random_ref(const Shape& shape, double lo, double hi, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  Ref r{shape, std::vector<double>(numel_of(shape))};
  for (double& x : r.v) x = dist(gen);
  return r;
}

Ref random_int_ref(const Shape& shape, int64_t lo, int64_t hi, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::uniform_int_distribution<int64_t> dist(lo, hi);
  Ref r{shape, std::vector<double>(numel_of(shape))};
  for (double& x : r.v) x = static_cast<double>(dist(gen));
  return r;
}

const char* layout_name(Layout l) {
  switch (l) {
    case Layout::Contiguous: return "contiguous";
    case Layout::Transposed: return "transposed";
    case Layout::Stepped: return "stepped";
    case Layout::Expanded: return "expanded";
  }
  return "?";
}

std::vector<Layout> layouts_for(const Shape& shape) {
  std::vector<Layout> out{Layout::Contiguous};
  if (shape.size() >= 2) out.push_back(Layout::Transposed);
  if (!shape.empty() && numel_of(shape) > 0) out.push_back(Layout::Stepped);
  if (std::any_of(shape.begin(), shape.end(), [](int64_t s) { return s > 1; })) out.push_back(Layout::Expanded);
  return out;
}

Tensor make_input(Ref& r, DType dtype, Device device, Layout layout) {
  r = round_to(r, dtype);
  const Shape& s = r.shape;
  const int64_t nd = static_cast<int64_t>(s.size());
  switch (layout) {
    case Layout::Contiguous:
      return from_ref(r, dtype, device);
    case Layout::Transposed: {
      Shape ts = s;
      std::swap(ts[nd - 1], ts[nd - 2]);
      Ref rt{ts, std::vector<double>(r.v.size())};
      for (int64_t i = 0; i < r.numel(); ++i) {
        auto idx = unravel(i, s);
        std::swap(idx[nd - 1], idx[nd - 2]);
        int64_t flat = 0;
        for (int64_t d = 0; d < nd; ++d) flat = flat * ts[d] + idx[d];
        rt.v[flat] = r.v[i];
      }
      return from_ref(rt, dtype, device).transpose(-1, -2);
    }
    case Layout::Stepped: {
      // Every other element of a tensor twice as long in the last dim; the skipped elements
      // hold a value that would show up in any result that read them.
      Shape ws = s;
      ws[nd - 1] *= 2;
      Ref rw{ws, std::vector<double>(r.v.size() * 2, 77.0)};
      for (int64_t i = 0; i < r.numel(); ++i) rw.v[2 * i] = r.v[i];
      return from_ref(rw, dtype, device).slice(-1, 0, std::nullopt, 2);
    }
    case Layout::Expanded: {
      int64_t d = 0;
      while (s[d] <= 1) ++d;
      Shape bs = s;
      bs[d] = 1;
      Ref base{bs, std::vector<double>(numel_of(bs))};
      for (int64_t i = 0; i < base.numel(); ++i) base.v[i] = r.at(unravel(i, bs));
      for (int64_t i = 0; i < r.numel(); ++i) {
        auto idx = unravel(i, s);
        idx[d] = 0;
        r.v[i] = base.at(idx);
      }
      return from_ref(base, dtype, device).expand(s);
    }
  }
  return {};
}

std::pair<double, double> tolerance(DType dtype) {
  switch (dtype) {
    case kFloat32: return {1.3e-6, 1e-5};
    case kFloat64: return {1e-7, 1e-7};
    case kFloat16: return {1e-3, 1e-5};
    case kBFloat16: return {1.6e-2, 1e-5};
    default: return {0, 0};
  }
}

Ref ref_matmul(const Ref& a, const Ref& b) {
  Ref a2 = a, b2 = b;
  if (a.shape.size() == 1) a2.shape.insert(a2.shape.begin(), 1);
  if (b.shape.size() == 1) b2.shape.push_back(1);
  const int64_t n = a2.shape[a2.shape.size() - 2], k = a2.shape.back(), m = b2.shape.back();
  Shape ba(a2.shape.begin(), a2.shape.end() - 2), bb(b2.shape.begin(), b2.shape.end() - 2);
  // Broadcast batch shapes.
  size_t nd = std::max(ba.size(), bb.size());
  Shape batch(nd);
  for (size_t i = 0; i < nd; ++i) {
    int64_t sa = i < nd - ba.size() ? 1 : ba[i - (nd - ba.size())];
    int64_t sb = i < nd - bb.size() ? 1 : bb[i - (nd - bb.size())];
    batch[i] = std::max(sa, sb);
  }
  const int64_t B = numel_of(batch);
  auto batch_index = [&](int64_t flat, const Shape& own) {
    std::vector<int64_t> idx(nd);
    for (size_t d = nd; d-- > 0;) {
      idx[d] = flat % batch[d];
      flat /= batch[d];
    }
    int64_t off = 0;
    for (size_t d = 0; d < own.size(); ++d) {
      int64_t i = idx[d + nd - own.size()];
      off = off * own[d] + (own[d] == 1 ? 0 : i);
    }
    return off;
  };
  Shape out_shape = batch;
  if (a.shape.size() > 1) out_shape.push_back(n);
  if (b.shape.size() > 1) out_shape.push_back(m);
  Ref out{out_shape, std::vector<double>(B * n * m)};
  for (int64_t bi = 0; bi < B; ++bi) {
    int64_t oa = batch_index(bi, ba) * n * k, ob = batch_index(bi, bb) * k * m;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < m; ++j) {
        double s = 0;
        for (int64_t p = 0; p < k; ++p) s += a2.v[oa + i * k + p] * b2.v[ob + p * m + j];
        out.v[bi * n * m + i * m + j] = s;
      }
  }
  return out;
}

double matmul_scale(int64_t k) { return std::max<double>(1, k / 4.0); }

void check_close(const Tensor& actual, const Ref& expected, DType expected_dtype, double rtol_scale,
                 const Ref& extra_atol) {
  REQUIRE(extra_atol.shape == expected.shape);
  REQUIRE(actual.defined());
  CHECK_MESSAGE(actual.sizes() == expected.shape, "shape ", shape_str(actual.sizes()), ", expected ",
                shape_str(expected.shape));
  CHECK_MESSAGE(actual.dtype() == expected_dtype, "dtype ", actual.dtype(), ", expected ", expected_dtype);
  if (actual.sizes() != expected.shape) return;
  auto [rtol, atol] = tolerance(expected_dtype);
  rtol *= rtol_scale;
  Ref a = to_ref(actual);
  int64_t bad = 0, first = -1;
  for (int64_t i = 0; i < a.numel(); ++i) {
    double x = a.v[i], e = expected.v[i];
    bool ok = std::isnan(e) ? std::isnan(x)
              : std::isinf(e) ? x == e
                              : std::fabs(x - e) <= atol + extra_atol.v[i] + rtol * std::fabs(e);
    if (!ok && bad++ == 0) first = i;
  }
  if (bad) {
    std::ostringstream os;
    os.precision(10);
    os << bad << " of " << a.numel() << " elements differ; first at flat index " << first << ": got " << a.v[first]
       << ", expected " << expected.v[first] << " (rtol " << rtol << ", atol " << atol + extra_atol.v[first] << ")";
    FAIL_CHECK(os.str());
  }
}

void check_close(const Tensor& actual, const Ref& expected, DType expected_dtype, double rtol_scale) {
  check_close(actual, expected, expected_dtype, rtol_scale,
              Ref{expected.shape, std::vector<double>(expected.v.size(), 0.0)});
}

void check_equal_values(const Tensor& actual, const std::vector<double>& expected) {
  Ref a = to_ref(actual);
  REQUIRE(a.v.size() == expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    if (std::isnan(expected[i])) CHECK(std::isnan(a.v[i]));
    else CHECK_MESSAGE(a.v[i] == expected[i], "index ", i);
  }
}

Tensor random_leaf(const Shape& shape, Device device, uint64_t seed, double lo, double hi) {
  Tensor t = from_ref(random_ref(shape, lo, hi, seed), kFloat64, device);
  t.requires_grad_();
  return t;
}

void check_gradcheck(const std::string& what, const GradcheckFn& fn, const TensorList& inputs) {
  INFO(what);
  std::string err = gradcheck(fn, inputs);
  CHECK_MESSAGE(err.empty(), err);
}

void check_gradgradcheck(const std::string& what, const GradcheckFn& fn, const TensorList& inputs) {
  INFO(what);
  std::string err = gradgradcheck(fn, inputs);
  CHECK_MESSAGE(err.empty(), err);
}

void check_error(const std::function<void()>& fn, ErrorCode code, const std::string& text) {
  try {
    fn();
    FAIL_CHECK("expected an ember::Error containing \"", text, "\", but nothing was thrown");
  } catch (const Error& e) {
    const std::string message = e.what();
    CHECK_MESSAGE(e.code() == code, "code ", std::string(error_code_name(e.code())), ", expected ",
                  std::string(error_code_name(code)), " (message: ", message, ")");
    CHECK_MESSAGE(message.find(text) != std::string::npos, "message \"", message, "\" does not contain \"", text, "\"");
  }
}

std::filesystem::path model_fixture(const std::string& name) {
  return std::filesystem::path(EMBER_SOURCE_DIR) / "tests/fixtures/models" / name;
}

TensorList model_fixture_inputs(const std::string& name, Device device) {
  TensorList inputs;
  for (size_t k = 0; std::filesystem::exists(model_fixture(name) / ("input_" + std::to_string(k) + ".npy")); ++k)
    inputs.push_back(load_npy((model_fixture(name) / ("input_" + std::to_string(k) + ".npy")).string()).to(device));
  return inputs;
}

double relative_difference(const Tensor& a, const Tensor& b) {
  const Tensor x = a.to(Device::cpu()).to(kFloat64), y = b.to(Device::cpu()).to(kFloat64);
  return max(abs(sub(x, y))).item<double>() / std::max(max(abs(y)).item<double>(), 1e-30);
}

}  // namespace ember::test
