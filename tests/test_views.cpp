// Views share storage and compute the right geometry on every device; reshape copies only
// when it must; every invalid argument gets a clear message.
#include "tests/harness.h"

using namespace ember;
using namespace ember::test;

namespace {

std::vector<double> iota_values(int64_t n, double start = 0) {
  std::vector<double> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = start + static_cast<double>(i);
  return v;
}

}  // namespace

DEVICE_TEST("views share storage and see writes") {
  Tensor x = arange(12, {kFloat32, device}).reshape({3, 4});
  for (const Tensor& v : {x.view({4, 3}), x.transpose(0, 1), x.permute({1, 0}), x.slice(1, 1, 3), x.select(0, 1),
                          narrow(x, 1, 0, 2), x.unsqueeze(0), x.reshape({2, 6}), flatten(x), x.expand({2, 3, 4}),
                          unflatten(x, 1, {2, 2}), split(x, 2, 1)[1], chunk(x, 3, 0)[2], unbind(x, 1)[3]}) {
    CHECK(v.shares_storage(x));
  }
  fill_(x.select(0, 1), 7);
  check_equal_values(x.select(1, 0), {0, 7, 8});
  check_equal_values(x.transpose(0, 1).select(0, 1), {1, 7, 9});
}

DEVICE_TEST("view geometry: values of every view op") {
  TensorOptions f{kFloat32, device};
  Tensor x = arange(24, f).reshape({2, 3, 4});
  CHECK(x.strides() == Strides{12, 4, 1});
  check_equal_values(x.permute({2, 0, 1}).contiguous(),
                     {0, 4, 8, 12, 16, 20, 1, 5, 9, 13, 17, 21, 2, 6, 10, 14, 18, 22, 3, 7, 11, 15, 19, 23});
  check_equal_values(x.slice(2, 1, std::nullopt, 2), {1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23});
  check_equal_values(x.slice(1, -2, 100), {4, 5, 6, 7, 8, 9, 10, 11, 16, 17, 18, 19, 20, 21, 22, 23});
  CHECK(x.slice(1, 5, 9).sizes() == Shape{2, 0, 4});
  CHECK(x.slice(0, 1, 0).numel() == 0);
  check_equal_values(x.select(2, -1), {3, 7, 11, 15, 19, 23});
  check_equal_values(narrow(x, 0, 1, 1).reshape({-1}), iota_values(12, 12));
  CHECK(x.squeeze().sizes() == Shape{2, 3, 4});
  CHECK(x.unsqueeze(-1).sizes() == Shape{2, 3, 4, 1});
  CHECK(x.unsqueeze(-1).squeeze(-1).sizes() == Shape{2, 3, 4});
  CHECK(zeros({1, 3, 1}, f).squeeze().sizes() == Shape{3});
  CHECK(zeros({1, 3, 1}, f).squeeze(0).sizes() == Shape{3, 1});
  CHECK(zeros({1, 3, 1}, f).squeeze(1).sizes() == Shape{1, 3, 1});
  Tensor e = tensor({1, 2, 3}, f).reshape({3, 1}).expand({-1, 4});
  CHECK(e.strides() == Strides{1, 0});
  check_equal_values(e, {1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3});
  CHECK(expand(tensor({5}, f), {2, 3}).sizes() == Shape{2, 3});
  CHECK(flatten(x, 1).sizes() == Shape{2, 12});
  CHECK(flatten(full({}, 1.0, f)).sizes() == Shape{1});
  CHECK(unflatten(x, -1, {2, -1}).sizes() == Shape{2, 3, 2, 2});
  auto parts = split(arange(7, f), std::vector<int64_t>{2, 0, 5});
  REQUIRE(parts.size() == 3);
  check_equal_values(parts[0], {0, 1});
  CHECK(parts[1].numel() == 0);
  check_equal_values(parts[2], {2, 3, 4, 5, 6});
  CHECK(split(arange(7, f), 3).size() == 3);
  CHECK(chunk(arange(7, f), 3).back().numel() == 1);
  CHECK(chunk(arange(6, f), 4).size() == 3);  // as in PyTorch: chunks of ceil(6 / 4)
  Tensor s = as_strided(arange(10, f), {3, 3}, {1, 1});
  check_equal_values(s, {0, 1, 2, 1, 2, 3, 2, 3, 4});
  CHECK(full({}, 2.0, f).transpose(0, -1).dim() == 0);
}

DEVICE_TEST("view versus reshape: copies only when the strides demand it") {
  TensorOptions f{kFloat32, device};
  Tensor x = arange(12, f).reshape({3, 4});
  Tensor t = x.transpose(0, 1);
  CHECK_FALSE(t.is_contiguous());
  check_error([&] { t.view({12}); }, ErrorCode::InvalidArgument, "is not compatible with the input's size [4, 3] and stride [1, 4]");
  Tensor r = t.reshape({12});
  CHECK_FALSE(r.shares_storage(x));
  check_equal_values(r, {0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11});
  // Splitting a dim of a non-contiguous tensor is still a view.
  Tensor v = t.view({2, 2, 3});
  CHECK(v.shares_storage(x));
  CHECK(v.strides() == Strides{2, 1, 4});
  // A stepped slice merges with nothing but can be viewed dim by dim.
  Tensor st = arange(16, f).reshape({4, 4}).slice(1, 0, std::nullopt, 2);
  CHECK(st.view({4, 2, 1}).shares_storage(st));
  CHECK(x.contiguous().is_same(x));
  CHECK(t.contiguous().is_contiguous());
  CHECK(zeros({0, 3}, f).view({3, 0, 5}).numel() == 0);
  CHECK(zeros({2, 1, 3}, f).transpose(0, 1).is_contiguous());  // size-1 dims do not count
}

DEVICE_TEST("views: errors name the op and what was expected") {
  TensorOptions f{kFloat32, device};
  Tensor x = zeros({2, 3}, f);
  check_error([&] { x.view({4, -1}); }, ErrorCode::InvalidArgument, "[view] shape [4, -1] is invalid for input of size 6");
  check_error([&] { x.view({-1, -1}); }, ErrorCode::InvalidArgument, "[view] only one dimension can be inferred");
  check_error([&] { x.reshape({7}); }, ErrorCode::InvalidArgument, "[reshape] shape [7] is invalid for input of size 6");
  check_error([&] { x.permute({0}); }, ErrorCode::InvalidArgument, "[permute] expected 2 dims");
  check_error([&] { x.permute({0, 0}); }, ErrorCode::InvalidArgument, "[permute] dim 0 repeats");
  check_error([&] { x.transpose(0, 2); }, ErrorCode::InvalidArgument, "[transpose] dimension out of range (expected in [-2, 1], got 2)");
  check_error([&] { x.expand({3, 3}); }, ErrorCode::ShapeMismatch, "[expand] the size 2 of dim 0 must match the target size 3");
  check_error([&] { x.expand({3}); }, ErrorCode::InvalidArgument, "[expand] the target shape [3] has fewer dims");
  check_error([&] { x.slice(0, 0, 1, 0); }, ErrorCode::InvalidArgument, "[slice] step must be positive, got 0");
  check_error([&] { x.select(1, 3); }, ErrorCode::InvalidArgument, "[select] index 3 is out of range for dim 1 of size 3");
  check_error([&] { narrow(x, 1, 2, 2); }, ErrorCode::InvalidArgument, "[narrow] start 2 and length 2 reach outside dim 1 of size 3");
  check_error([&] { split(x, std::vector<int64_t>{1, 1}, 1); }, ErrorCode::InvalidArgument, "[split] split sizes [1, 1] sum to 2");
  check_error([&] { chunk(x, 0); }, ErrorCode::InvalidArgument, "[chunk] chunks must be positive");
  check_error([&] { as_strided(x, {3, 3}, {3, 1}); }, ErrorCode::InvalidArgument, "reach outside the storage");
  check_error([&] { x.unsqueeze(3); }, ErrorCode::InvalidArgument, "[unsqueeze] dimension out of range");
  check_error([&] { full({}, 1.0, f).select(0, 0); }, ErrorCode::InvalidArgument, "[select] cannot select from a 0-d tensor");
}
