// Indexing (index_select, gather, scatter, scatter_add, masked_fill), joining (cat, stack) and
// rearranging (tril, triu, flip, roll, repeat, pad) on every device and dtype.
#include "tests/harness.h"

using namespace ember;
using namespace ember::test;

namespace {

Tensor ints(std::vector<int64_t> v, const Shape& shape, Device device) {
  return from_vector<int64_t>(v, shape, {std::nullopt, device});
}

}  // namespace

DEVICE_TEST("index_select and gather on every dtype and layout") {
  uint64_t seed = 3;
  for (DType dtype : kEveryType) {
    for (Layout layout : {Layout::Contiguous, Layout::Transposed, Layout::Stepped}) {
      INFO("dtype ", std::string(dtype_name(dtype)), " ", std::string(layout_name(layout)));
      Ref r = random_int_ref({4, 5}, 0, dtype == kBool ? 1 : 9, seed++);
      Tensor x = make_input(r, dtype, device, layout);
      Tensor idx = ints({3, 0, 3, 1}, {4}, device);
      // index_select along dim 0 and dim 1.
      Ref e0{{4, 5}, {}}, e1{{4, 4}, {}};
      for (int64_t i : {3, 0, 3, 1})
        for (int64_t j = 0; j < 5; ++j) e0.v.push_back(r.v[i * 5 + j]);
      for (int64_t i = 0; i < 4; ++i)
        for (int64_t j : {3, 0, 3, 1}) e1.v.push_back(r.v[i * 5 + j]);
      check_close(index_select(x, 0, idx), e0, dtype);
      check_close(index_select(x, 1, idx.to(kInt32)), e1, dtype);
      // gather along dim 1 with a [4, 2] index.
      Tensor g = ints({4, 0, 1, 1, 2, 3, 0, 4}, {4, 2}, device);
      Ref eg{{4, 2}, {r.v[4], r.v[0], r.v[6], r.v[6], r.v[12], r.v[13], r.v[15], r.v[19]}};
      check_close(gather(x, 1, g), eg, dtype);
      // gather along dim 0 with a smaller index.
      Tensor g0 = ints({3, 2, 1}, {1, 3}, device);
      check_close(gather(x, 0, g0), Ref{{1, 3}, {r.v[15], r.v[11], r.v[7]}}, dtype);
    }
  }
  // A large index_select (an embedding lookup) takes the parallel path.
  Tensor table = randn({1000, 64}, {kFloat32, device});
  Tensor rows = randint(0, 1000, {2000}, {kInt64, device});
  Tensor picked = index_select(table, 0, rows);
  Ref rt = to_ref(table), rr = to_ref(rows), rp = to_ref(picked);
  bool same = true;
  for (int64_t i = 0; i < 2000; ++i)
    for (int64_t j = 0; j < 64; ++j) same &= rp.v[i * 64 + j] == rt.v[static_cast<int64_t>(rr.v[i]) * 64 + j];
  CHECK(same);
}

DEVICE_TEST("index_select's backward along dim 0 (an embedding's) sums duplicate rows, deterministically") {
  // 3000 looked-up rows of a 200-row table (many duplicates, some rows never read), a 3-d
  // table (rows of 2 x 37), every float dtype; against float64 sums of the same gradients.
  for (DType dtype : kFloatTypes) {
    INFO("dtype ", std::string(dtype_name(dtype)));
    const Tensor index = randint(0, 200, {3000}, {kInt64, device});
    const Tensor table = zeros({200, 2, 37}, {dtype, device}).requires_grad_();
    const Tensor grad = randn({3000, 2, 37}, {kFloat64, device});
    index_select(table, 0, index).backward(grad.to(dtype));
    const Ref ri = to_ref(index), rg = to_ref(grad.to(dtype).to(kFloat64));
    Ref want{{200, 2, 37}, std::vector<double>(200 * 74, 0.0)};
    for (int64_t i = 0; i < 3000; ++i)
      for (int64_t c = 0; c < 74; ++c) want.v[static_cast<size_t>(ri.v[i]) * 74 + c] += rg.v[i * 74 + c];
    check_close(table.grad(), want, dtype, 4);
    // The same sum, bit for bit, every time (no atomics).
    const Tensor first = table.grad().clone();
    table.set_grad(Tensor());
    index_select(table, 0, index).backward(grad.to(dtype));
    CHECK(max(abs(sub(table.grad(), first))).item<double>() == 0);
  }
  // An empty lookup gives zeros; int32 indices work as int64.
  const Tensor t = ones({4, 3}, {kFloat32, device}).requires_grad_();
  sum(index_select(t, 0, ints({}, {0}, device))).backward();
  check_equal_values(t.grad(), std::vector<double>(12, 0.0));
  t.set_grad(Tensor());
  sum(index_select(t, 0, ints({3, 3, 0}, {3}, device).to(kInt32))).backward();
  check_equal_values(t.grad(), {1, 1, 1, 0, 0, 0, 0, 0, 0, 2, 2, 2});
}

DEVICE_TEST("scatter and scatter_add, with duplicates, on every dtype") {
  for (DType dtype : kEveryType) {
    INFO("dtype ", std::string(dtype_name(dtype)));
    Tensor base = zeros({3, 4}, {dtype, device});
    Tensor idx = ints({0, 2, 1, 0, 2, 2, 0, 1}, {2, 4}, device);
    Tensor src = from_vector<double>({1, 1, 1, 1, 0, 1, 1, 0}, {2, 4}, {dtype, device});
    Tensor s = scatter(base, 0, idx, src);
    // Row-major order: the later duplicate wins.
    check_equal_values(s, {1, 0, 1, 1, 0, 0, 1, 0, 0, 1, 0, 0});
    if (dtype == kBool) {
      check_error([&] { scatter_add(base, 0, idx, src); }, ErrorCode::Unsupported, "[scatter_add]");
      continue;
    }
    Tensor a = scatter_add(ones({3, 4}, {dtype, device}), 0, idx, src);
    check_equal_values(a, {2, 1, 2, 2, 1, 1, 2, 1, 1, 3, 1, 1});
    Tensor v = scatter(base, 1, ints({3, 1}, {1, 2}, device), 1);
    check_equal_values(v, {0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0});
  }
  // scatter_add accumulates every duplicate (an embedding backward).
  Tensor acc = zeros({5}, {kFloat32, device});
  Tensor many = randint(0, 5, {100000}, {kInt64, device});
  scatter_add_(acc, 0, many, ones({100000}, {kFloat32, device}));
  CHECK(sum(acc).item<double>() == 100000);
  Tensor counts = zeros({5}, {kFloat32, device});
  Ref rm = to_ref(many);
  std::vector<double> expected(5);
  for (double i : rm.v) expected[static_cast<int>(i)] += 1;
  check_equal_values(acc, expected);
}

DEVICE_TEST("masked_fill") {
  Tensor x = arange(6, {kFloat32, device}).reshape({2, 3});
  Tensor m = from_vector<bool>({true, false, true}, {3}, {std::nullopt, device});
  check_equal_values(masked_fill(x, m, -1), {-1, 1, -1, -1, 4, -1});
  Tensor i = arange(3, {kInt32, device});
  Tensor r = masked_fill(i, m, 2.7);
  CHECK(r.dtype() == kInt32);  // the value takes the input's dtype
  check_equal_values(r, {2, 1, 2});
  check_equal_values(masked_fill(x, m, full({}, 9.0, {kFloat64, device})), {9, 1, 9, 9, 4, 9});
  check_error([&] { masked_fill(x, x, 0); }, ErrorCode::DTypeMismatch, "[masked_fill] expected a bool mask, got float32");
  check_error([&] { masked_fill(m, gt(x, 0), 0); }, ErrorCode::ShapeMismatch, "[masked_fill] mask of shape [2, 3]");
}

DEVICE_TEST("cat and stack") {
  for (DType dtype : kEveryType) {
    INFO("dtype ", std::string(dtype_name(dtype)));
    Tensor a = from_vector<double>({1, 0, 1, 1}, {2, 2}, {dtype, device});
    Tensor b = from_vector<double>({0, 1}, {1, 2}, {dtype, device});
    check_equal_values(cat({a, b}), {1, 0, 1, 1, 0, 1});
    check_equal_values(cat({a, b.transpose(0, 1)}, 1), {1, 0, 0, 1, 1, 1});
    check_equal_values(stack({a, a}, 1), {1, 0, 1, 0, 1, 1, 1, 1});
    CHECK(stack({a, a}, -1).sizes() == Shape{2, 2, 2});
  }
  Tensor f = ones({2}, {kFloat32, device});
  Tensor i = from_vector<int64_t>({3}, {1}, {std::nullopt, device});
  Tensor c = cat({f, i});
  CHECK(c.dtype() == kFloat32);  // promotes
  check_equal_values(c, {1, 1, 3});
  CHECK(cat({zeros({0}, {kFloat32, device}), ones({2, 3}, {kFloat32, device})}).sizes() == Shape{2, 3});  // legacy empty skipped
  check_error([&] { cat({zeros({2, 3}, {kFloat32, device}), zeros({2, 4}, {kFloat32, device})}); }, ErrorCode::ShapeMismatch,
              "[cat] sizes must match except in dim 0");
  check_error([&] { cat({}); }, ErrorCode::InvalidArgument, "[cat] expected a non-empty list");
  check_error([&] { stack({zeros({2}, {kFloat32, device}), zeros({3}, {kFloat32, device})}); }, ErrorCode::ShapeMismatch,
              "[stack] expects tensors of equal shape");
}

DEVICE_TEST("tril, triu, flip, roll, repeat, pad") {
  TensorOptions f{kFloat32, device};
  Tensor x = arange(12, f).reshape({3, 4}) + 1;
  check_equal_values(tril(x), {1, 0, 0, 0, 5, 6, 0, 0, 9, 10, 11, 0});
  check_equal_values(tril(x, -1), {0, 0, 0, 0, 5, 0, 0, 0, 9, 10, 0, 0});
  check_equal_values(triu(x, 1), {0, 2, 3, 4, 0, 0, 7, 8, 0, 0, 0, 12});
  check_equal_values(triu(from_vector<bool>({true, true, true, true}, {2, 2}, {std::nullopt, device})), {1, 1, 0, 1});
  CHECK(tril(ones({2, 3, 3}, f)).sizes() == Shape{2, 3, 3});
  check_equal_values(flip(x, {0}), {9, 10, 11, 12, 5, 6, 7, 8, 1, 2, 3, 4});
  check_equal_values(flip(x, {-1, 0}), {12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1});
  check_equal_values(flip(x.transpose(0, 1), {1}), {9, 5, 1, 10, 6, 2, 11, 7, 3, 12, 8, 4});
  check_equal_values(roll(x, {1}, {1}), {4, 1, 2, 3, 8, 5, 6, 7, 12, 9, 10, 11});
  check_equal_values(roll(x, {-1, 5}, {0, 1}), {8, 5, 6, 7, 12, 9, 10, 11, 4, 1, 2, 3});
  check_equal_values(roll(arange(5, f), {2}), {3, 4, 0, 1, 2});
  check_equal_values(roll(x, {13}).reshape({-1}), {12, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  check_equal_values(repeat(tensor({1, 2}, f), {2, 2}), {1, 2, 1, 2, 1, 2, 1, 2});
  CHECK(repeat(x, {2, 1, 3}).sizes() == Shape{2, 3, 12});
  check_equal_values(repeat(x.slice(1, 0, 2), {1, 2}), {1, 2, 1, 2, 5, 6, 5, 6, 9, 10, 9, 10});
  Tensor p = pad(tensor({1, 2, 3}, f), {1, 2}, -1);
  check_equal_values(p, {-1, 1, 2, 3, -1, -1});
  Tensor p2 = pad(x, {0, 0, 1, 0});
  CHECK(p2.sizes() == Shape{4, 4});
  check_equal_values(p2.select(0, 0), {0, 0, 0, 0});
  check_equal_values(pad(x, {-1, -2}), {2, 6, 10});  // negative pads crop
  check_equal_values(pad(x, {1, -3, -2, 0}), {0, 9});
  check_error([&] { pad(x, {1}); }, ErrorCode::InvalidArgument, "[pad] padding length must be even");
  check_error([&] { repeat(x, {2}); }, ErrorCode::InvalidArgument, "[repeat] number of repeats (1) cannot be smaller");
  check_error([&] { tril(tensor({1}, f)); }, ErrorCode::InvalidArgument, "[tril] expected a tensor with at least 2 dims");
}

DEVICE_TEST("indexing: errors name the op and what was expected") {
  TensorOptions f{kFloat32, device};
  Tensor x = zeros({3, 4}, f);
  check_error([&] { index_select(x, 0, ints({3}, {1}, device)); }, ErrorCode::InvalidArgument,
              "[index_select] index 3 is out of bounds for dim 0 with size 3");
  check_error([&] { index_select(x, 1, ints({-1}, {1}, device)); }, ErrorCode::InvalidArgument,
              "[index_select] index -1 is out of bounds for dim 1 with size 4");
  check_error([&] { index_select(x, 0, zeros({1}, f)); }, ErrorCode::DTypeMismatch,
              "[index_select] expected an int64 or int32 index, got float32");
  check_error([&] { gather(x, 0, ints({1}, {1}, device)); }, ErrorCode::ShapeMismatch,
              "[gather] index must have as many dims as the input (2)");
  // The gathered dim may be longer than the input's; the others may not.
  CHECK(gather(x, 1, ints({0, 0, 0, 0, 0}, {1, 5}, device)).sizes() == Shape{1, 5});
  check_error([&] { gather(x, 0, ints({0, 0, 0, 0, 0}, {1, 5}, device)); }, ErrorCode::ShapeMismatch,
              "[gather] index of shape [1, 5] is larger than the input of shape [3, 4] in dim 1");
  check_error([&] { scatter(x, 0, ints({0, 5}, {1, 2}, device), 1.0); }, ErrorCode::InvalidArgument,
              "[scatter] index 5 is out of bounds for dim 0 with size 3");
}
