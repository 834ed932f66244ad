// Reductions over any set of dims, with keepdim, on every device and dtype, against float64.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "tests/harness.h"

using namespace ember;
using namespace ember::test;

namespace {

// True when two tensors hold the same bytes (NaNs included).
bool same_bits(const Tensor& a, const Tensor& b) {
  Tensor x = a.contiguous().to(Device::cpu()), y = b.contiguous().to(Device::cpu());
  return x.sizes() == y.sizes() && x.dtype() == y.dtype() && std::memcmp(x.data(), y.data(), x.nbytes()) == 0;
}

}  // namespace

namespace {

double ref_sum(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0); }
double ref_mean(const std::vector<double>& v) { return v.empty() ? NAN : ref_sum(v) / v.size(); }
double ref_prod(const std::vector<double>& v) {
  return std::accumulate(v.begin(), v.end(), 1.0, [](double a, double b) { return a * b; });
}
double ref_var(const std::vector<double>& v, double correction) {
  double m = ref_mean(v), ss = 0;
  for (double x : v) ss += (x - m) * (x - m);
  double denom = std::max(0.0, static_cast<double>(v.size()) - correction);
  return ss / denom;
}
double ref_max(const std::vector<double>& v) {
  double m = -INFINITY;
  for (double x : v) {
    if (std::isnan(x)) return x;
    m = std::max(m, x);
  }
  return m;
}
double ref_min(const std::vector<double>& v) {
  double m = INFINITY;
  for (double x : v) {
    if (std::isnan(x)) return x;
    m = std::min(m, x);
  }
  return m;
}

struct ReduceCase {
  const char* name;
  std::function<Tensor(const Tensor&, const DimList&, bool)> op;
  std::function<double(const std::vector<double>&)> ref;
  bool floats_only;
  bool needs_nonempty;     // no identity: zero-size reductions throw
  bool sum_like = false;   // integer inputs give int64
};

std::vector<ReduceCase> reduce_cases() {
  return {
      {"sum", [](auto& t, auto& d, bool k) { return sum(t, d, k); }, ref_sum, false, false, true},
      {"mean", [](auto& t, auto& d, bool k) { return mean(t, d, k); }, ref_mean, true, false},
      {"prod", [](auto& t, auto& d, bool k) { return prod(t, d, k); }, ref_prod, false, false, true},
      {"amax", [](auto& t, auto& d, bool k) { return amax(t, d, k); }, ref_max, false, true},
      {"amin", [](auto& t, auto& d, bool k) { return amin(t, d, k); }, ref_min, false, true},
      {"var", [](auto& t, auto& d, bool k) { return var(t, d, 1, k); }, [](auto& v) { return ref_var(v, 1); }, true,
       false},
      {"var(correction=0)", [](auto& t, auto& d, bool k) { return var(t, d, 0, k); },
       [](auto& v) { return ref_var(v, 0); }, true, false},
      {"std", [](auto& t, auto& d, bool k) { return ember::std(t, d, 1, k); },
       [](auto& v) { return std::sqrt(ref_var(v, 1)); }, true, false},
      {"logsumexp", [](auto& t, auto& d, bool k) { return logsumexp(t, d, k); },
       [](auto& v) {
         double s = 0;
         for (double x : v) s += std::exp(x);
         return std::log(s);
       },
       true, false},
      {"norm", [](auto& t, auto& d, bool k) { return norm(t, 2, d, k); },
       [](auto& v) {
         double s = 0;
         for (double x : v) s += x * x;
         return std::sqrt(s);
       },
       true, false},
      {"norm(p=1)", [](auto& t, auto& d, bool k) { return norm(t, 1, d, k); },
       [](auto& v) {
         double s = 0;
         for (double x : v) s += std::fabs(x);
         return s;
       },
       true, false},
      {"norm(p=3)", [](auto& t, auto& d, bool k) { return norm(t, 3, d, k); },
       [](auto& v) {
         double s = 0;
         for (double x : v) s += std::pow(std::fabs(x), 3);
         return std::cbrt(s);
       },
       true, false},
      {"norm(p=inf)", [](auto& t, auto& d, bool k) { return norm(t, INFINITY, d, k); },
       [](auto& v) {
         double s = 0;
         for (double x : v) s = std::max(s, std::fabs(x));
         return s;
       },
       true, false},
      {"any", [](auto& t, auto& d, bool k) { return any(t, d, k); },
       [](auto& v) { return std::any_of(v.begin(), v.end(), [](double x) { return x != 0; }) ? 1.0 : 0.0; }, false,
       false},
      {"all", [](auto& t, auto& d, bool k) { return all(t, d, k); },
       [](auto& v) { return std::all_of(v.begin(), v.end(), [](double x) { return x != 0; }) ? 1.0 : 0.0; }, false,
       false},
  };
}

struct DimCase {
  Shape shape;
  DimList dims;
};

const std::vector<DimCase> kDimCases = {
    {{}, {}},          {{7}, {}},         {{7}, {0}},        {{3, 5}, {1}},     {{3, 5}, {0}},     {{3, 5}, {-1, 0}},
    {{2, 3, 4}, {1}},  {{2, 3, 4}, {0, 2}}, {{2, 3, 4}, {}}, {{2, 0, 3}, {1}}, {{2, 0, 3}, {2}},  {{4, 1, 3}, {1}},
    {{3, 40000}, {1}}, {{40000, 3}, {0}}, {{70000}, {}},
};

}  // namespace

DEVICE_TEST("reductions match float64 over dims, keepdim, dtypes and layouts") {
  uint64_t seed = 1;
  for (const ReduceCase& c : reduce_cases())
    for (DType dtype : kEveryType)
      for (const DimCase& dc : kDimCases)
        for (bool keepdim : {false, true}) {
          const bool big = numel_of(dc.shape) > 10000;
          if (big && dtype != kFloat32 && dtype != kInt32) continue;
          for (Layout layout : layouts_for(dc.shape)) {
            if (big && layout == Layout::Expanded) continue;
            INFO(std::string(c.name), " dtype ", std::string(dtype_name(dtype)), " shape ", shape_str(dc.shape), " dims ",
                 list_str(dc.dims), " keepdim ", keepdim, " ", std::string(layout_name(layout)), " on ", device.str());
            Ref in = dtype == kBool            ? random_int_ref(dc.shape, 0, 1, seed)
                     : !is_floating(dtype)     ? random_int_ref(dc.shape, dtype == kUInt8 ? 0 : -2, 2, seed)
                     : std::string(c.name) == "prod" ? random_ref(dc.shape, 0.8, 1.2, seed)
                                                     : random_ref(dc.shape, -2, 2, seed);
            ++seed;
            if (std::string(c.name) == "prod" && !is_floating(dtype))
              for (double& x : in.v) x = x < 0 ? -1 : 1;  // integer products stay within int64
            Tensor x = make_input(in, dtype, device, layout);
            const bool any_all = std::string(c.name) == "any" || std::string(c.name) == "all";
            if (c.floats_only && !is_floating(dtype)) {
              if (std::string(c.name) == "logsumexp") {
                check_close(c.op(x, dc.dims, keepdim), reduce_ref(in, dc.dims, keepdim, c.ref), kFloat32);
              } else {
                CHECK_THROWS_AS(c.op(x, dc.dims, keepdim), Error);
              }
              continue;
            }
            bool empty_reduction = false;
            DimList wrapped = reduction_dims(dc.dims, x.dim(), "test");
            for (int64_t d : wrapped) empty_reduction |= dc.shape[d] == 0;
            if (c.needs_nonempty && empty_reduction) {
              check_error([&] { c.op(x, dc.dims, keepdim); }, ErrorCode::InvalidArgument, "cannot reduce over dim");
              continue;
            }
            DType out = any_all ? (dtype == kUInt8 ? kUInt8 : kBool)
                        : c.sum_like && !is_floating(dtype) ? kInt64
                                                            : dtype;
            if (big && dtype == kFloat32 && std::string(c.name) == "sum") {
              // 40000 terms in [-2, 2] can sum to about 0 while partial sums reach hundreds: the
              // error is bounded by one float32 rounding of the terms' absolute mass (2^-24 Σ|x|),
              // not by the result (simulated in the CUDA kernel's order: 4e-5 typical, 1e-4
              // worst of 20 draws; the bound is 2.4e-3).
              const Ref want = reduce_ref(in, dc.dims, keepdim, c.ref);
              const Ref mass = reduce_ref(in, dc.dims, keepdim, [](auto& v) {
                double m = 0;
                for (double e : v) m += std::fabs(e);
                return m;
              });
              const Ref got = to_ref(c.op(x, dc.dims, keepdim));
              REQUIRE(got.v.size() == want.v.size());
              for (size_t i = 0; i < got.v.size(); ++i) CHECK(std::fabs(got.v[i] - want.v[i]) <= std::ldexp(mass.v[i], -24));
              continue;
            }
            // Long float32 reductions round more than one element does.
            double scale = big ? 10 : 1;
            check_close(c.op(x, dc.dims, keepdim), reduce_ref(in, dc.dims, keepdim, c.ref), out, scale);
          }
        }
}

DEVICE_TEST("max, min, argmax, argmin: values and first indices") {
  uint64_t seed = 7;
  for (DType dtype : kEveryType) {
    if (dtype == kBool) continue;
    for (const DimCase& dc : std::vector<DimCase>{{{7}, {0}}, {{3, 5}, {1}}, {{3, 5}, {0}}, {{2, 3, 4}, {1}}, {{4, 3000}, {1}}}) {
      for (Layout layout : layouts_for(dc.shape)) {
        INFO("dtype ", std::string(dtype_name(dtype)), " shape ", shape_str(dc.shape), " ", std::string(layout_name(layout)));
        // Few distinct values: ties, where the first index must win.
        Ref in = random_int_ref(dc.shape, 0, 4, seed++);
        Tensor x = make_input(in, dtype, device, layout);
        int64_t d = dc.dims[0];
        auto arg = [](bool is_max) {
          return [is_max](const std::vector<double>& v) {
            return static_cast<double>((is_max ? std::max_element(v.begin(), v.end()) : std::min_element(v.begin(), v.end())) - v.begin());
          };
        };
        auto [vmax, imax] = max(x, d);
        check_close(vmax, reduce_ref(in, {d}, false, ref_max), dtype);
        check_close(imax, reduce_ref(in, {d}, false, arg(true)), kInt64);
        auto [vmin, imin] = min(x, d, true);
        check_close(vmin, reduce_ref(in, {d}, true, ref_min), dtype);
        check_close(imin, reduce_ref(in, {d}, true, arg(false)), kInt64);
        check_close(argmax(x, d), reduce_ref(in, {d}, false, arg(true)), kInt64);
        check_close(argmin(x, d, true), reduce_ref(in, {d}, true, arg(false)), kInt64);
        check_close(argmax(x), reduce_ref(in, {}, false, arg(true)), kInt64);
        check_close(max(x), reduce_ref(in, {}, false, ref_max), dtype);
        check_close(min(x), reduce_ref(in, {}, false, ref_min), dtype);
      }
    }
  }
  // NaN wins and its first index is returned.
  Tensor n = tensor({1, NAN, 3, NAN}, {kFloat32, device});
  CHECK(std::isnan(max(n).item<double>()));
  CHECK(argmax(n).item<int64_t>() == 1);
  CHECK(argmin(n).item<int64_t>() == 1);
  CHECK(argmax(tensor({-INFINITY, -INFINITY}, {kFloat32, device})).item<int64_t>() == 0);
  CHECK(argmax(ones({2, 3}, {kFloat32, device}), std::nullopt, true).sizes() == Shape{1, 1});
}

DEVICE_TEST("reduction dtype rules and options") {
  TensorOptions on{std::nullopt, device};
  Tensor i8 = from_vector<int8_t>({100, 100, 100}, {3}, on);
  CHECK(sum(i8).dtype() == kInt64);
  CHECK(sum(i8).item<int64_t>() == 300);  // no int8 overflow
  CHECK(sum(from_vector<bool>({true, true, false}, {3}, on)).item<int64_t>() == 2);
  CHECK(sum(i8, {}, false, kFloat16).dtype() == kFloat16);
  CHECK(mean(i8, {}, false, kFloat32).item<double>() == 100);
  CHECK(std::isnan(mean(zeros({0}, {kFloat32, device})).item<double>()));
  CHECK(sum(zeros({0}, {kFloat32, device})).item<double>() == 0);
  CHECK(prod(zeros({0}, {kFloat32, device})).item<double>() == 1);
  CHECK(std::isnan(var(ones({1}, {kFloat32, device})).item<double>()));  // 0 / 0
  CHECK(std::isinf(var(tensor({1, 2}, {kFloat32, device}), {}, 2).item<double>()));
  CHECK(logsumexp(tensor({-INFINITY, -INFINITY}, {kFloat32, device})).item<double>() == -INFINITY);
  CHECK(logsumexp(tensor({INFINITY, 1}, {kFloat32, device})).item<double>() == INFINITY);
  CHECK(std::fabs(logsumexp(tensor({1000, 1000}, {kFloat32, device})).item<double>() - (1000 + std::log(2.0))) < 1e-3);
  CHECK(any(from_vector<uint8_t>({0, 3}, {2}, on)).dtype() == kUInt8);
  CHECK(sum(ones({2, 3}, {kFloat32, device}), {0, 1}, true).sizes() == Shape{1, 1});
  // Large float32 sums accumulate in a wide type: 2^24 + many ones is not stuck at 2^24.
  Tensor big = ones({1 << 20}, {kFloat32, device});
  CHECK(sum(big).item<double>() == 1 << 20);
  // Results do not depend on the thread count.
  if (device.is_cpu()) {
    Tensor r = randn({300000}, {kFloat32, device});
    int saved = get_num_threads();
    set_num_threads(1);
    double one = sum(r).item<double>(), v1 = var(r).item<double>();
    set_num_threads(4);
    CHECK(sum(r).item<double>() == one);
    CHECK(var(r).item<double>() == v1);
    set_num_threads(saved);
  }
  // The same bits run to run, for sliced (few outputs) and unsliced reductions alike.
  {
    manual_seed(11);
    Tensor r = randn({3, 1 << 20}, {kFloat32, device});
    Tensor s1 = sum(r, {1}), v1 = var(r), n1 = norm(r, 2, {0}), c1 = sum(r, {0});
    for (int run = 0; run < 3; ++run) {
      CHECK(same_bits(sum(r, {1}), s1));
      CHECK(same_bits(var(r), v1));
      CHECK(same_bits(norm(r, 2, {0}), n1));
      CHECK(same_bits(sum(r, {0}), c1));
    }
  }
}

DEVICE_TEST("reductions: errors name the op and what was expected") {
  Tensor x = zeros({2, 3}, {kFloat32, device});
  check_error([&] { sum(x, {2}); }, ErrorCode::InvalidArgument, "[sum] dimension out of range (expected in [-2, 1], got 2)");
  check_error([&] { sum(x, {1, -1}); }, ErrorCode::InvalidArgument, "[sum] dimension 1 appears more than once");
  check_error([&] { mean(from_vector<int64_t>({1}, {1}, {std::nullopt, device})); }, ErrorCode::Unsupported,
              "[mean] expected a floating-point input, got int64");
  check_error([&] { max(zeros({0}, {kFloat32, device})); }, ErrorCode::InvalidArgument, "[max] cannot reduce an empty tensor");
  check_error([&] { amax(zeros({0, 2}, {kFloat32, device}), {0}); }, ErrorCode::InvalidArgument,
              "[amax] cannot reduce over dim 0 of size 0");
  check_error([&] { argmax(zeros({0}, {kFloat32, device})); }, ErrorCode::InvalidArgument, "[argmax] cannot reduce an empty tensor");
}
