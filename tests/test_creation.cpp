// Factories and random tensors: values, dtype inference, errors, seeds, statistics, and
// Philox's known-answer vectors.
#include <cmath>
#include <set>

#include "runtime/philox.h"
#include "tests/harness.h"

using namespace ember;
using namespace ember::test;

DEVICE_TEST("factories: values and dtype inference") {
  CHECK(zeros({2, 3}, {std::nullopt, device}).dtype() == kFloat32);
  CHECK(full({2}, 3, {std::nullopt, device}).dtype() == kInt64);
  CHECK(full({2}, 3.5, {std::nullopt, device}).dtype() == kFloat32);
  CHECK(full({2}, true, {std::nullopt, device}).dtype() == kBool);
  for (DType dtype : kEveryType) {
    INFO("dtype ", std::string(dtype_name(dtype)));
    check_equal_values(zeros({2, 2}, {dtype, device}), {0, 0, 0, 0});
    check_equal_values(ones({3}, {dtype, device}), {1, 1, 1});
    check_equal_values(eye(2, 3, {dtype, device}), {1, 0, 0, 0, 1, 0});
    Tensor e = empty({4, 0}, {dtype, device});
    CHECK(e.numel() == 0);
    CHECK(e.device() == device);
  }
  check_equal_values(full({2}, 2.5, {kFloat16, device}), {2.5, 2.5});
  check_equal_values(arange(5, {std::nullopt, device}), {0, 1, 2, 3, 4});
  CHECK(arange(5, {std::nullopt, device}).dtype() == kInt64);
  CHECK(arange(0, 1, 0.25, {std::nullopt, device}).dtype() == kFloat32);
  check_equal_values(arange(0, 1, 0.25, {std::nullopt, device}), {0, 0.25, 0.5, 0.75});
  check_equal_values(arange(5, 0, -2, {std::nullopt, device}), {5, 3, 1});
  check_equal_values(arange(0, 0, 1, {std::nullopt, device}), {});
  check_equal_values(linspace(0, 1, 5, {std::nullopt, device}), {0, 0.25, 0.5, 0.75, 1});
  check_equal_values(linspace(3, 3, 1, {std::nullopt, device}), {3});
  CHECK(linspace(0, 1, 0, {std::nullopt, device}).numel() == 0);
  // Symmetric: the last value is exactly `end`, as in PyTorch.
  CHECK(linspace(-1.1, 2.3, 7, {kFloat64, device}).select(0, 6).item<double>() == 2.3);
  check_equal_values(linspace(0, 10, 5, {kInt64, device}), {0, 2, 5, 7, 10});
  Tensor like = ones({2, 3}, {kFloat64, device});
  CHECK(zeros_like(like).dtype() == kFloat64);
  CHECK(full_like(like, 7).sizes() == Shape{2, 3});
  CHECK(ones_like(like, kInt32).dtype() == kInt32);
  CHECK(empty_like(like).device() == device);
  check_equal_values(tensor({1, 2.5}, {kFloat64, device}), {1, 2.5});
}

TEST_CASE("from_vector and from_blob") {
  Tensor t = from_vector<int32_t>({1, 2, 3, 4, 5, 6}, {2, 3});
  CHECK(t.dtype() == kInt32);
  CHECK(t.select(1, 2).select(0, 1).item<int>() == 6);
  CHECK(from_vector<double>({1, 2}, {2}, {kFloat16}).dtype() == kFloat16);
  check_error([] { from_vector<float>({1, 2, 3}, {2, 2}); }, ErrorCode::ShapeMismatch,
              "[from_vector] shape [2, 2] holds 4 elements but 3 values were given");
  // from_blob wraps memory without copying; the keep-alive handle owns it.
  auto buffer = std::make_shared<std::vector<float>>(std::vector<float>{1, 2, 3, 4});
  Tensor b = from_blob(buffer->data(), {2, 2}, kFloat32, Device::cpu(), buffer);
  (*buffer)[3] = 40;
  CHECK(b.select(0, 1).select(0, 1).item<float>() == 40);
  mul_(b, 2);
  CHECK((*buffer)[0] == 2);
  check_error([] { from_blob(nullptr, {2}, kFloat32, Device::cpu()); }, ErrorCode::InvalidArgument, "[from_blob] data is null");
}

TEST_CASE("factories: errors name the op and what was expected") {
  check_error([] { zeros({2, -1}); }, ErrorCode::InvalidArgument, "[full] negative dimension -1 in shape [2, -1]");
  check_error([] { empty({1LL << 31, 1LL << 31}, {kFloat64}); }, ErrorCode::InvalidArgument, "needs more bytes than size_t can count");
  check_error([] { empty({1LL << 62, 1LL << 62}); }, ErrorCode::InvalidArgument, "has more elements than int64 can count");
  // Zero elements, but strides past int64 (found by fuzzing the .npy reader).
  check_error([] { empty({0, 1LL << 40, 1LL << 40}); }, ErrorCode::InvalidArgument, "its strides do not fit in int64");
  check_error([] { zeros({6}).reshape({1LL << 40, 1LL << 40, -1}); }, ErrorCode::InvalidArgument,
              "is invalid for input of size 6");
  check_error([] { empty({1LL << 45}); }, ErrorCode::OutOfMemory, "[cpu allocator] failed to allocate");
  check_error([] { arange(0, 5, 0); }, ErrorCode::InvalidArgument, "[arange] step must be nonzero");
  check_error([] { arange(5, 0, 1); }, ErrorCode::InvalidArgument, "[arange] upper bound and larger bound inconsistent with step sign");
  check_error([] { linspace(0, 1, -1); }, ErrorCode::InvalidArgument, "[linspace] number of steps must be non-negative");
  check_error([] { eye(-2); }, ErrorCode::InvalidArgument, "[eye] n must be non-negative");
  check_error([] { rand({2}, {kInt64}); }, ErrorCode::Unsupported, "[rand] expected a floating dtype, got int64");
  check_error([] { randint(3, 3, {2}); }, ErrorCode::InvalidArgument, "[randint] expected low < high");
  check_error([] { bernoulli(zeros({2}), 1.5); }, ErrorCode::InvalidArgument, "[bernoulli] expected 0 <= p <= 1");
}

TEST_CASE("Philox4x32-10 matches Random123's known-answer vectors") {
  auto check = [](philox::Block b, std::array<uint32_t, 4> expected) {
    for (int i = 0; i < 4; ++i) CHECK(b.w[i] == expected[i]);
  };
  check(philox::philox4x32_10(0, 0, 0, 0, 0, 0), {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8});
  check(philox::philox4x32_10(~0u, ~0u, ~0u, ~0u, ~0u, ~0u), {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd});
  check(philox::philox4x32_10(0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0),
        {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1});
}

DEVICE_TEST("random: seeds reproduce, generators advance, draws agree with the CPU") {
  for (DType dtype : kFloatTypes) {
    INFO("dtype ", std::string(dtype_name(dtype)));
    manual_seed(42);
    Tensor a = rand({1000}, {dtype, device});
    Tensor b = randn({1001}, {dtype, device});
    manual_seed(42);
    Tensor a2 = rand({1000}, {dtype, device});
    Tensor b2 = randn({1001}, {dtype, device});
    check_close(a2, to_ref(a), dtype);
    check_close(b2, to_ref(b), dtype);
    CHECK(any(ne(a, rand({1000}, {dtype, device}))).item<bool>());  // the stream advanced
    // The same seed on the CPU gives the same numbers (exact bits for uniform draws; normal
    // draws go through log/sin/cos, which may differ in the last bits between devices).
    manual_seed(42);
    Tensor ac = rand({1000}, {dtype, Device::cpu()});
    Tensor bc = randn({1001}, {dtype, Device::cpu()});
    check_close(a, to_ref(ac), dtype, 0);
    check_close(b, to_ref(bc), dtype, 4);
  }
  manual_seed(7);
  Tensor i = randint(-5, 5, {999}, {kInt32, device});
  Tensor p = randperm(1000, {kInt64, device});
  Tensor bern = bernoulli(full({1000}, 0.3, {kFloat32, device}));
  manual_seed(7);
  check_close(randint(-5, 5, {999}, {kInt32, Device::cpu()}), to_ref(i), kInt32);
  check_close(randperm(1000, {kInt64, Device::cpu()}), to_ref(p), kInt64);
  check_close(bernoulli(full({1000}, 0.3, {kFloat32, Device::cpu()})), to_ref(bern), kFloat32);
  // An explicit generator leaves the default stream alone.
  Generator g(123);
  Tensor g1 = rand({5}, {kFloat32, device}, &g);
  g.manual_seed(123);
  check_close(rand({5}, {kFloat32, device}, &g), to_ref(g1), kFloat32, 0);
}

DEVICE_TEST("random: distributions have the right statistics") {
  manual_seed(2024);
  const int64_t n = 1 << 20;
  const double se = 1 / std::sqrt(static_cast<double>(n));  // standard error scale
  Tensor u = rand({n}, {kFloat32, device});
  CHECK(amin(u).item<double>() >= 0);
  CHECK(amax(u).item<double>() < 1);
  CHECK(std::fabs(mean(u).item<double>() - 0.5) < 6 * se * std::sqrt(1.0 / 12));
  CHECK(std::fabs(var(u).item<double>() - 1.0 / 12) < 0.01 / 12 * 6);
  Tensor h = rand({n}, {kFloat16, device});
  CHECK(amax(h).item<double>() < 1);  // rounding never reaches 1
  Tensor b16 = rand({n}, {kBFloat16, device});
  CHECK(amax(b16).item<double>() < 1);
  Tensor z = randn({n}, {kFloat32, device});
  CHECK(std::fabs(mean(z).item<double>()) < 6 * se);
  CHECK(std::fabs(ember::std(z).item<double>() - 1) < 0.01);
  CHECK(std::fabs(mean(pow(z, 3)).item<double>()) < 6 * se * std::sqrt(15.0));  // symmetric
  // About 31.7% of a normal sample lies outside one standard deviation.
  double outside = mean(gt(abs(z), 1).to(kFloat32)).item<double>();
  CHECK(std::fabs(outside - 0.3173) < 0.005);
  Tensor zd = randn({n}, {kFloat64, device});
  CHECK(std::fabs(mean(zd).item<double>()) < 6 * se);
  Tensor ri = randint(3, 10, {n}, {kInt64, device});
  CHECK(amin(ri).item<int64_t>() == 3);
  CHECK(amax(ri).item<int64_t>() == 9);
  CHECK(std::fabs(mean(ri.to(kFloat64)).item<double>() - 6) < 0.02);
  Tensor perm = randperm(5000, {kInt64, device});
  Ref rp = to_ref(perm);
  std::set<double> seen(rp.v.begin(), rp.v.end());
  CHECK(seen.size() == 5000);
  CHECK(*seen.begin() == 0);
  CHECK(*seen.rbegin() == 4999);
  CHECK(any(ne(perm, arange(5000, {kInt64, device}))).item<bool>());
  Tensor bern = bernoulli(zeros({n}, {kFloat32, device}), 0.25);
  CHECK(std::fabs(mean(bern).item<double>() - 0.25) < 6 * se);
  Tensor probs = rand({n}, {kFloat64, device});
  Tensor draws = bernoulli(probs);
  CHECK(draws.dtype() == kFloat64);
  // Draws follow their own probabilities: E[draw - p] = 0.
  CHECK(std::fabs(mean(draws - probs).item<double>()) < 6 * se);
  CHECK(randn_like(probs).dtype() == kFloat64);
  CHECK(rand_like(probs).device() == device);
}
