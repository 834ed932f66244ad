// sort, argsort, topk, cumsum and multinomial against references written here: every numeric
// dtype, several dims, both orders, ties (stability), NaN placement, int64 values past 2^53;
// gradchecks; multinomial's frequencies against its weights.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "tests/harness.h"

using namespace ember;
using namespace ember::test;

namespace {

// Stable sort of each row of a [rows, n] Ref: {values, indices}.
std::pair<Ref, Ref> sort_rows(const Ref& r, bool descending) {
  const int64_t n = r.shape.back(), rows = r.numel() / n;
  Ref values = r, indices = r;
  for (int64_t row = 0; row < rows; ++row) {
    std::vector<int64_t> idx(static_cast<size_t>(n));
    std::iota(idx.begin(), idx.end(), 0);
    auto key = [&](int64_t i) { return r.v[static_cast<size_t>(row * n + i)]; };
    std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) {
      const double ka = key(a), kb = key(b);
      if (descending) return (std::isnan(ka) && !std::isnan(kb)) || ka > kb;
      return (!std::isnan(ka) && std::isnan(kb)) || ka < kb;
    });
    for (int64_t i = 0; i < n; ++i) {
      values.v[static_cast<size_t>(row * n + i)] = key(idx[static_cast<size_t>(i)]);
      indices.v[static_cast<size_t>(row * n + i)] = static_cast<double>(idx[static_cast<size_t>(i)]);
    }
  }
  return {values, indices};
}

std::vector<double> values_of(const Tensor& t) { return to_ref(t).v; }

}  // namespace

DEVICE_TEST("sort: sort, argsort and topk are stable, order NaN last, match references in every dtype") {
  for (DType dt : {kFloat32, kFloat64, kFloat16, kBFloat16, kInt64, kInt32, kInt8, kUInt8}) {
    for (int64_t n : {1, 7, 300, 5000}) {
      INFO(dt, " rows of ", n);
      // Few distinct values: many ties, so stability shows.
      Ref r = random_int_ref({3, n}, 0, 20, 50 + n);
      if (is_floating(dt)) r.v[1] = NAN;
      if (is_floating(dt) && n > 3) r.v[static_cast<size_t>(n + 2)] = NAN;
      for (bool desc : {false, true}) {
        auto [values, indices] = sort_rows(r, desc);
        ValuesIndices got = sort(from_ref(r, dt, device), 1, desc);
        CHECK(values_of(got.indices) == indices.v);
        check_close(got.values, values, dt);
        CHECK(values_of(argsort(from_ref(r, dt, device), -1, desc)) == indices.v);
        // Along dim 0 of the transpose: the same rows.
        ValuesIndices t = sort(transpose(from_ref(r, dt, device), 0, 1), 0, desc);
        CHECK(values_of(transpose(t.indices, 0, 1).contiguous()) == indices.v);
      }
      // topk: the first k of the sort in that order.
      const int64_t k = std::min<int64_t>(n, 5);
      auto [desc_values, desc_indices] = sort_rows(r, true);
      ValuesIndices top = topk(from_ref(r, dt, device), k);
      std::vector<double> want;
      for (int64_t row = 0; row < 3; ++row)
        for (int64_t i = 0; i < k; ++i) want.push_back(desc_indices.v[static_cast<size_t>(row * n + i)]);
      CHECK(values_of(top.indices) == want);
    }
  }
  // int64 values that float64 cannot tell apart.
  Tensor big = from_vector<int64_t>({(int64_t{1} << 60) + 1, int64_t{1} << 60, -3}, {3}, {kInt64, device});
  CHECK(values_of(argsort(big)) == std::vector<double>{2, 1, 0});
  // -0 and +0 are equal (input order kept); the values keep their sign bits.
  Tensor zeros_ = from_vector<float>({0.0f, -0.0f, 1.0f, -1.0f}, {4}, {kFloat32, device});
  CHECK(values_of(argsort(zeros_)) == std::vector<double>{3, 0, 1, 2});
  CHECK(std::signbit(sort(zeros_).values.to(Device::cpu()).data_ptr<float>()[2]));
  check_gradcheck("sort", [](const TensorList& in) { return TensorList{sort(in[0], 1, true).values}; },
                  {random_leaf({3, 6}, device, 60)});
  check_gradcheck("topk", [](const TensorList& in) { return TensorList{topk(in[0], 2, 0).values}; },
                  {random_leaf({5, 3}, device, 61)});
  check_error([&] { topk(ones({3}, {kFloat32, device}), 4); }, ErrorCode::InvalidArgument, "k must be in [0, 3]");
}

DEVICE_TEST("sort: cumsum matches float64 running sums in every dtype and dim; gradcheck") {
  for (DType dt : kEveryType) {
    if (dt == kBool) continue;
    for (int64_t dim : {0, 1, 2}) {
      INFO(dt, " dim ", dim);
      Ref r = is_floating(dt) ? random_ref({4, 70, 3}, -1, 1, 70) : random_int_ref({4, 70, 3}, 0, 5, 71);
      r = round_to(r, dt);
      Ref want = r;
      for (int64_t a = 0; a < 4; ++a)
        for (int64_t b = 0; b < 70; ++b)
          for (int64_t c = 0; c < 3; ++c) {
            int64_t idx[3] = {a, b, c};
            if (idx[dim] == 0) continue;
            int64_t prev[3] = {a, b, c};
            prev[dim] -= 1;
            want.v[static_cast<size_t>((a * 70 + b) * 3 + c)] +=
                want.v[static_cast<size_t>((prev[0] * 70 + prev[1]) * 3 + prev[2])];
          }
      Tensor got = cumsum(from_ref(r, dt, device), dim);
      CHECK(got.dtype() == (is_floating(dt) ? dt : kInt64));
      // Rounded once per element (float accumulation): a running sum's error grows with length.
      check_close(got, want, got.dtype(), 8);
    }
  }
  check_gradcheck("cumsum", [](const TensorList& in) { return TensorList{cumsum(in[0], 1)}; },
                  {random_leaf({3, 5, 2}, device, 72)});
  check_gradgradcheck("cumsum", [](const TensorList& in) { return TensorList{mul(cumsum(in[0], 0), in[0])}; },
                      {random_leaf({4, 3}, device, 73)});
}

DEVICE_TEST("sort: multinomial draws in proportion to its weights, never a zero weight; errors") {
  Tensor w = from_vector<float>({1, 0, 3, 4, 2}, {5}, {kFloat32, device});
  Generator gen(123);
  const int64_t draws = 200000;
  Tensor s = multinomial(w, draws, true, &gen);
  REQUIRE(s.sizes() == Shape{draws});
  const std::vector<double> v = values_of(s);
  std::vector<double> counts(5, 0);
  for (double x : v) counts[static_cast<size_t>(x)] += 1;
  const double p[5] = {0.1, 0, 0.3, 0.4, 0.2};
  for (int i = 0; i < 5; ++i) {
    INFO("category ", i, ": ", counts[static_cast<size_t>(i)]);
    const double sigma = std::sqrt(draws * p[i] * (1 - p[i]));
    CHECK(std::abs(counts[static_cast<size_t>(i)] - draws * p[i]) <= 5 * sigma + 0.5);
  }
  // The same seed gives the same draws.
  Generator again(123);
  CHECK(values_of(multinomial(w, draws, true, &again)) == v);
  // Without replacement: distinct categories, the first drawn in proportion to the weights.
  Tensor rows = expand(unsqueeze(w, 0), {20000, 5}).contiguous();
  Tensor distinct = multinomial(rows, 4, false, &gen);
  REQUIRE(distinct.sizes() == Shape{20000, 4});
  const std::vector<double> d = values_of(distinct);
  std::vector<double> first(5, 0);
  bool all_distinct = true, zero_drawn = false;
  for (int64_t r = 0; r < 20000; ++r) {
    std::vector<double> row(d.begin() + r * 4, d.begin() + r * 4 + 4);
    first[static_cast<size_t>(row[0])] += 1;
    std::sort(row.begin(), row.end());
    all_distinct = all_distinct && std::adjacent_find(row.begin(), row.end()) == row.end();
    zero_drawn = zero_drawn || std::find(row.begin(), row.end(), 1.0) != row.end();
  }
  CHECK(all_distinct);
  CHECK(!zero_drawn);
  for (int i = 0; i < 5; ++i) CHECK(std::abs(first[static_cast<size_t>(i)] / 20000 - p[i]) <= 0.015);
  check_error([&] { multinomial(w, 5, false); }, ErrorCode::InvalidArgument, "cannot draw 5 distinct categories");
  check_error([&] { multinomial(from_vector<float>({1, -1}, {2}, {kFloat32, device}), 1); }, ErrorCode::InvalidArgument,
              "finite and non-negative");
  check_error([&] { multinomial(zeros({2, 3}, {kFloat32, device}), 1, true); }, ErrorCode::InvalidArgument,
              "sums to zero");
}
