// The op test harness: float64 reference values computed independently of ember's kernels,
// PyTorch's per-dtype tolerances, input layouts (contiguous, transposed, stepped, expanded),
// and test cases that run once per device (CUDA cases are skipped, and counted as skipped,
// where no GPU is present).
#pragma once

#include <cstdint>
#include <filesystem>
#include <doctest/doctest.h>

#include <functional>
#include <string>
#include <vector>

#include "ember.h"

namespace ember::test {

/// Devices present: the CPU, and cuda:0 where a GPU is.
bool cuda_available();

/// Row-major float64 values with a shape: the reference side of every comparison.
struct Ref {
  Shape shape;
  std::vector<double> v;

  int64_t numel() const { return static_cast<int64_t>(v.size()); }
  /// Element at a multi-index.
  double at(const std::vector<int64_t>& idx) const;
};

/// A tensor's values as a Ref (any device, any dtype).
Ref to_ref(const Tensor& t);
/// A contiguous tensor of `dtype` on `device` holding the Ref's values.
Tensor from_ref(const Ref& r, DType dtype, Device device);
/// The Ref after rounding its values to `dtype` (what a tensor of that dtype can hold).
Ref round_to(const Ref& r, DType dtype);

/// Element-wise f over a Ref.
Ref map_ref(const Ref& a, const std::function<double(double)>& f);
/// Element-wise f over two Refs with NumPy broadcasting.
Ref zip_ref(const Ref& a, const Ref& b, const std::function<double(double, double)>& f);
/// Reduces over sorted dims (empty: all), calling f on the values of each output element in
/// row-major order.
Ref reduce_ref(const Ref& a, std::vector<int64_t> dims, bool keepdim,
           const std::function<double(const std::vector<double>&)>& f);

/// Random values uniform in [lo, hi), from a fixed seed per call site.
Ref random_ref(const Shape& shape, double lo, double hi, uint64_t seed);
/// Random integers in [lo, hi].
Ref random_int_ref(const Shape& shape, int64_t lo, int64_t hi, uint64_t seed);

enum class Layout { Contiguous, Transposed, Stepped, Expanded };
const char* layout_name(Layout l);
/// Layouts applicable to a shape (transposed needs 2 dims; expanded a dim of size > 1).
std::vector<Layout> layouts_for(const Shape& shape);

/// A tensor with Ref r's values (rounded to dtype) laid out as `layout`. For Expanded, the
/// values along the first dim of size > 1 are made equal first (r is updated to match).
Tensor make_input(Ref& r, DType dtype, Device device, Layout layout);

/// The product of a and b with NumPy/PyTorch matmul semantics (1-D operands, broadcast batches).
Ref ref_matmul(const Ref& a, const Ref& b);
/// check_close's rtol scale for a product summing k terms: rounding grows with k (PyTorch's
/// tests scale the same way).
double matmul_scale(int64_t k);

/// PyTorch's assert_close tolerances: {rtol, atol}.
std::pair<double, double> tolerance(DType dtype);
/// Checks shape, dtype and values (NaN equals NaN; infinities must match).
void check_close(const Tensor& actual, const Ref& expected, DType expected_dtype, double rtol_scale = 1);
/// As check_close, with each element's own absolute tolerance added to the dtype's (same shape
/// as expected): for results whose rounding follows an intermediate larger than the result.
void check_close(const Tensor& actual, const Ref& expected, DType expected_dtype, double rtol_scale,
                 const Ref& extra_atol);
void check_equal_values(const Tensor& actual, const std::vector<double>& expected);

/// A float64 leaf that requires grad, uniform in [lo, hi) from `seed`, on `device`.
Tensor random_leaf(const Shape& shape, Device device, uint64_t seed, double lo = -1, double hi = 1);
/// CHECKs that gradcheck (gradgradcheck) of fn at `inputs` passes, naming `what` on failure.
void check_gradcheck(const std::string& what, const GradcheckFn& fn, const TensorList& inputs);
void check_gradgradcheck(const std::string& what, const GradcheckFn& fn, const TensorList& inputs);

/// An exported model fixture's folder (tests/fixtures/models/NAME), and its inputs
/// (input_0.npy, input_1.npy, ...) on `device`.
std::filesystem::path model_fixture(const std::string& name);
TensorList model_fixture_inputs(const std::string& name, Device device);
/// The largest difference between a and b relative to b's largest magnitude, in float64.
double relative_difference(const Tensor& a, const Tensor& b);

/// Checks that fn throws ember::Error with `code` and a message containing `text`.
void check_error(const std::function<void()>& fn, ErrorCode code, const std::string& text);

/// The float dtypes, the integer dtypes, everything.
extern const std::vector<DType> kFloatTypes, kIntTypes, kEveryType;

}  // namespace ember::test

#define EMBER_CAT_(a, b) a##b
#define EMBER_CAT(a, b) EMBER_CAT_(a, b)

/// A test case run once per device: the body sees `device`.
#define DEVICE_TEST(name)                                                                             \
  static void EMBER_CAT(device_test_, __LINE__)(ember::Device device);                               \
  TEST_CASE(name " [cpu]") { EMBER_CAT(device_test_, __LINE__)(ember::Device::cpu()); }             \
  TEST_CASE(name " [cuda]" * doctest::skip(!ember::test::cuda_available())) {                        \
    EMBER_CAT(device_test_, __LINE__)(ember::Device::cuda(0));                                       \
  }                                                                                                   \
  static void EMBER_CAT(device_test_, __LINE__)(ember::Device device)
