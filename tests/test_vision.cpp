// Convolutional-network functions and modules: values against direct float64 loops, the
// transposed convolution as the adjoint of the convolution, gradcheck of each, and the
// modules' PyTorch names and buffers.
#include <cmath>
#include <limits>

#include "nn/vision.h"
#include "ops/conv.h"
#include "nn/vision_modules.h"
#include "tests/harness.h"

using namespace ember;
using namespace ember::test;
using nn::Pair;

namespace {

// Direct convolution in float64: out[n, o, i, j] = b[o] + Σ x[n, c, i·s − p + kh·d, j·s − p + kw·d] · w[o, c', kh, kw].
Ref direct_conv(const Ref& x, const Ref& w, const Ref* b, Pair s, Pair p, Pair d, int64_t groups) {
  const int64_t n = x.shape[0], h = x.shape[2], wd = x.shape[3];
  const int64_t o = w.shape[0], cg = w.shape[1], kh = w.shape[2], kw = w.shape[3];
  const int64_t oh = (h + 2 * p[0] - d[0] * (kh - 1) - 1) / s[0] + 1, ow = (wd + 2 * p[1] - d[1] * (kw - 1) - 1) / s[1] + 1;
  Ref out{{n, o, oh, ow}, std::vector<double>(static_cast<size_t>(n * o * oh * ow))};
  const int64_t og = o / groups;
  for (int64_t in = 0; in < n; ++in)
    for (int64_t io = 0; io < o; ++io)
      for (int64_t i = 0; i < oh; ++i)
        for (int64_t j = 0; j < ow; ++j) {
          double acc = b ? b->v[io] : 0;
          const int64_t g = io / og;
          for (int64_t ic = 0; ic < cg; ++ic)
            for (int64_t a = 0; a < kh; ++a)
              for (int64_t bb = 0; bb < kw; ++bb) {
                const int64_t y = i * s[0] - p[0] + a * d[0], xx = j * s[1] - p[1] + bb * d[1];
                if (y < 0 || y >= h || xx < 0 || xx >= wd) continue;
                acc += x.at({in, g * cg + ic, y, xx}) * w.at({io, ic, a, bb});
              }
          out.v[((in * o + io) * oh + i) * ow + j] = acc;
        }
  return out;
}

}  // namespace

DEVICE_TEST("vision: conv2d equals the direct sum for strides, padding, dilation and groups") {
  struct Case {
    Pair stride, padding, dilation;
    int64_t groups;
    bool bias;
  };
  uint64_t seed = 100;
  for (const Case& c : std::vector<Case>{{{1, 1}, {0, 0}, {1, 1}, 1, true},
                                          {{2, 1}, {1, 2}, {1, 1}, 1, false},
                                          {{1, 2}, {2, 1}, {2, 1}, 2, true},
                                          {{2, 2}, {1, 1}, {1, 2}, 4, true}}) {
    INFO("stride ", c.stride[0], ",", c.stride[1], " padding ", c.padding[0], ",", c.padding[1], " groups ", c.groups);
    Ref x = random_ref({2, 4, 7, 6}, -1, 1, seed++), w = random_ref({8, 4 / c.groups, 3, 2}, -1, 1, seed++);
    Ref b = random_ref({8}, -1, 1, seed++);
    Tensor y = nn::conv2d(from_ref(x, kFloat64, device), from_ref(w, kFloat64, device),
                          c.bias ? from_ref(b, kFloat64, device) : Tensor(), c.stride, c.padding, c.dilation, c.groups);
    check_close(y, direct_conv(x, w, c.bias ? &b : nullptr, c.stride, c.padding, c.dilation, c.groups), kFloat64);
    // float32 as well, against the same reference.
    Tensor y32 = nn::conv2d(from_ref(x, kFloat32, device), from_ref(w, kFloat32, device),
                            c.bias ? from_ref(b, kFloat32, device) : Tensor(), c.stride, c.padding, c.dilation, c.groups);
    check_close(y32, direct_conv(x, w, c.bias ? &b : nullptr, c.stride, c.padding, c.dilation, c.groups), kFloat32, 10);
  }
  // "same" with an even kernel pads one more at the end, as PyTorch.
  Ref x = random_ref({1, 2, 5, 5}, -1, 1, 7), w = random_ref({3, 2, 4, 4}, -1, 1, 8);
  Tensor same = nn::conv2d(from_ref(x, kFloat64, device), from_ref(w, kFloat64, device), Tensor(), {1, 1}, nn::Padding::Same);
  CHECK(same.sizes() == Shape{1, 3, 5, 5});
  Tensor padded = pad(from_ref(x, kFloat64, device), {1, 2, 1, 2});
  check_close(same, to_ref(nn::conv2d(padded, from_ref(w, kFloat64, device))), kFloat64);
  check_error([&] { nn::conv2d(from_ref(x, kFloat64, device), from_ref(w, kFloat64, device), Tensor(), {1, 1}, {0, 0}, {1, 1}, 3); },
              ErrorCode::ShapeMismatch, "do not fit");
  check_error([&] { nn::conv2d(ones({2, 5, 5}, {kFloat64, device}), from_ref(w, kFloat64, device)); },
              ErrorCode::ShapeMismatch, "expected a 4-d input");
}

DEVICE_TEST("vision: gradcheck of conv2d, conv1d and conv_transpose2d") {
  Tensor x = random_leaf({2, 4, 5, 4}, device, 1), w = random_leaf({6, 2, 3, 2}, device, 2), b = random_leaf({6}, device, 3);
  check_gradcheck("conv2d groups 2, stride 2, padding 1, dilation (2, 1)", [](const TensorList& in) {
    return TensorList{nn::conv2d(in[0], in[1], in[2], {2, 1}, {1, 1}, {2, 1}, 2)};
  }, {x, w, b});
  Tensor x1 = random_leaf({2, 3, 9}, device, 4), w1 = random_leaf({4, 3, 3}, device, 5);
  check_gradcheck("conv1d", [](const TensorList& in) { return TensorList{nn::conv1d(in[0], in[1], Tensor(), 2, 1, 2)}; },
                   {x1, w1});
  Tensor xt = random_leaf({2, 4, 3, 3}, device, 6), wt = random_leaf({4, 3, 3, 2}, device, 7), bt = random_leaf({6}, device, 8);
  check_gradcheck("conv_transpose2d", [](const TensorList& in) {
    return TensorList{nn::conv_transpose2d(in[0], in[1], in[2], {2, 1}, {1, 0}, {1, 0}, 2, {1, 2})};
  }, {xt, wt, bt});
  // Second order: the backward under create_graph takes the public-op forms.
  check_gradgradcheck("conv2d second order", [](const TensorList& in) {
    return TensorList{nn::conv2d(in[0], in[1], in[2], {2, 1}, {1, 0}, {1, 1}, 2)};
  }, {random_leaf({1, 4, 4, 3}, device, 9), random_leaf({2, 2, 2, 2}, device, 10), random_leaf({2}, device, 11)});
}

DEVICE_TEST("vision: conv_transpose2d is the adjoint of conv2d") {
  // <conv2d(x, w), y> = <x, conv_transpose2d(y, w)> for the same stride, padding, dilation.
  for (auto [stride, padding, dilation, groups] : std::vector<std::tuple<Pair, Pair, Pair, int64_t>>{
           {{1, 1}, {0, 0}, {1, 1}, 1}, {{2, 2}, {1, 0}, {1, 1}, 1}, {{2, 3}, {1, 1}, {2, 1}, 2}}) {
    Tensor x = from_ref(random_ref({2, 4, 9, 10}, -1, 1, 11), kFloat64, device);
    Tensor w = from_ref(random_ref({6, 4 / groups, 3, 3}, -1, 1, 12), kFloat64, device);
    Tensor y = nn::conv2d(x, w, Tensor(), stride, padding, dilation, groups);
    Tensor r = from_ref(random_ref(y.sizes(), -1, 1, 13), kFloat64, device);
    // The output_padding that gives back x's size.
    Pair op{0, 0};
    for (int i = 0; i < 2; ++i) {
      const int64_t got = (y.sizes()[2 + i] - 1) * stride[i] - 2 * padding[i] + dilation[i] * 2 + 1;
      op[i] = x.sizes()[2 + i] - got;
    }
    Tensor back = nn::conv_transpose2d(r, w, Tensor(), stride, padding, op, groups, dilation);
    REQUIRE(back.sizes() == x.sizes());
    CHECK(sum(mul(y, r)).item<double>() == doctest::Approx(sum(mul(x, back)).item<double>()).epsilon(1e-12));
  }
}

DEVICE_TEST("vision: max and average pooling against direct loops, ceil_mode and padding included") {
  Ref x = random_ref({2, 3, 7, 8}, -2, 2, 21);
  Tensor t = from_ref(x, kFloat64, device);
  const int64_t h = 7, w = 8;
  for (auto [k, s, p, ceil] : std::vector<std::tuple<Pair, Pair, Pair, bool>>{
           {{2, 2}, {2, 2}, {0, 0}, false}, {{3, 3}, {2, 2}, {1, 1}, false}, {{3, 2}, {2, 3}, {1, 0}, true}}) {
    const int64_t kh = k[0], kw = k[1];  // clang 14 lambdas cannot capture structured bindings
    const bool ceil_mode = ceil;
    INFO("kernel ", kh, "x", kw, " ceil ", ceil_mode);
    auto [values, indices] = nn::max_pool2d_with_indices(t, k, s, p, {1, 1}, ceil);
    Tensor avg = nn::avg_pool2d(t, k, s, p, ceil, true), avg_real = nn::avg_pool2d(t, k, s, p, ceil, false);
    const int64_t oh = values.sizes()[2], ow = values.sizes()[3];
    Ref vr = to_ref(values), ir = to_ref(indices), ar = to_ref(avg), rr = to_ref(avg_real);
    for (int64_t n = 0; n < 2; ++n)
      for (int64_t c = 0; c < 3; ++c)
        for (int64_t i = 0; i < oh; ++i)
          for (int64_t j = 0; j < ow; ++j) {
            double best = -1e300, total = 0;
            int64_t arg = -1, real = 0;
            const int64_t y0 = i * s[0] - p[0], x0 = j * s[1] - p[1];
            const int64_t y_end = std::min(y0 + k[0], h + p[0]), x_end = std::min(x0 + k[1], w + p[1]);
            for (int64_t y = y0; y < y0 + k[0]; ++y)
              for (int64_t xx = x0; xx < x0 + k[1]; ++xx) {
                if (y < 0 || y >= h || xx < 0 || xx >= w) continue;
                const double v = x.at({n, c, y, xx});
                if (v > best) best = v, arg = y * w + xx;
                total += v;
                ++real;
              }
            const size_t at = static_cast<size_t>(((n * 3 + c) * oh + i) * ow + j);
            CHECK(vr.v[at] == best);
            CHECK(ir.v[at] == arg);
            CHECK(ar.v[at] == doctest::Approx(total / static_cast<double>((y_end - y0) * (x_end - x0))));
            CHECK(rr.v[at] == doctest::Approx(total / static_cast<double>(real)));
          }
  }
  Tensor g = random_leaf({1, 2, 5, 6}, device, 22);
  check_gradcheck("max_pool2d", [](const TensorList& in) {
    return TensorList{nn::max_pool2d(in[0], {2, 3}, {2, 2}, {1, 1}, {1, 1}, true)};
  }, {g});
  check_gradcheck("avg_pool2d", [](const TensorList& in) {
    return TensorList{nn::avg_pool2d(in[0], {3, 3}, {2, 2}, {1, 1}, true, false)};
  }, {g});
  check_gradgradcheck("max_pool2d second order", [](const TensorList& in) {
    return TensorList{nn::max_pool2d(in[0], {3, 3}, {1, 1}, {1, 1})};
  }, {random_leaf({1, 1, 4, 4}, device, 24)});
  // Dilation, overlapping windows and ties (zeros after a relu): this device's kernel against the
  // public-op form (max_pool2d_reference) on the CPU, values and indices, and the gradients
  // against the CPU's.
  Tensor xd = relu(from_ref(random_ref({2, 3, 9, 10}, -1, 1, 23), kFloat32, device));
  Tensor gd = from_ref(random_ref({2, 3, 9, 10}, -1, 1, 25), kFloat32, device);
  for (auto [k, s, p, d, ceil] : std::vector<std::tuple<Pair, Pair, Pair, Pair, bool>>{
           {{3, 3}, {1, 1}, {1, 1}, {1, 1}, false}, {{3, 2}, {2, 1}, {1, 0}, {2, 1}, true}}) {
    const int64_t kh = k[0], kw = k[1], dh = d[0];  // clang 14 lambdas cannot capture structured bindings
    const bool ceil_mode = ceil;
    INFO("kernel ", kh, "x", kw, " dilation ", dh, " ceil ", ceil_mode);
    Tensor xi = xd.detach().clone(), xc = xd.to(Device::cpu());
    xi.requires_grad_();
    xc.requires_grad_();
    auto [v, idx] = nn::max_pool2d_with_indices(xi, k, s, p, d, ceil);
    auto [vc, ic] = nn::max_pool2d_with_indices(xc, k, s, p, d, ceil);
    const PoolParams params{k, s, p, d, ceil};
    auto [vr, ir] = max_pool2d_reference(xc.detach(), params);
    check_equal_values(v, to_ref(vr).v);
    check_equal_values(idx, to_ref(ir).v);
    check_equal_values(vc, to_ref(vr).v);
    check_equal_values(ic, to_ref(ir).v);
    for (DType half : {kFloat16, kBFloat16}) {  // the kernels compare half types in float
      auto [vh, ih] = nn::max_pool2d_with_indices(xd.detach().to(half), k, s, p, d, ceil);
      auto [vhr, ihr] = max_pool2d_reference(xc.detach().to(half), params);
      check_equal_values(vh, to_ref(vhr).v);
      check_equal_values(ih, to_ref(ihr).v);
    }
    Tensor go = gd.slice(2, 0, v.sizes()[2]).slice(3, 0, v.sizes()[3]);
    check_close(grad({v}, {xi}, {go})[0], to_ref(grad({vc}, {xc}, {go.to(Device::cpu())})[0]), kFloat32);
  }
  // Rows wide enough for the CPU's interior path (eight float windows at a time, column strides
  // 1 and 2, column dilation too), with ties (relu's zeros) and NaNs (which win): values and
  // indices equal the public-op form's.
  {
    Ref wide = random_ref({2, 3, 11, 37}, -1, 1, 27);
    for (size_t i = 5; i < wide.v.size(); i += 97) wide.v[i] = NAN;
    const Tensor xw = relu(from_ref(wide, kFloat32, device)), xwc = xw.to(Device::cpu());
    for (auto [k, s, p, d] : std::vector<std::tuple<Pair, Pair, Pair, Pair>>{{{3, 3}, {2, 2}, {1, 1}, {1, 1}},
                                                                            {{2, 2}, {2, 2}, {0, 0}, {1, 1}},
                                                                            {{3, 3}, {1, 1}, {1, 1}, {1, 2}},
                                                                            {{3, 2}, {1, 2}, {1, 1}, {2, 1}}}) {
      const int64_t kh = k[0], kw = k[1], sw = s[1], dw = d[1];  // clang 14 lambdas cannot capture structured bindings
      INFO("wide rows: kernel ", kh, "x", kw, " column stride ", sw, " column dilation ", dw);
      auto [v, idx] = nn::max_pool2d_with_indices(xw, k, s, p, d, false);
      auto [vr, ir] = max_pool2d_reference(xwc, PoolParams{k, s, p, d, false});
      check_equal_values(v, to_ref(vr).v);
      check_equal_values(idx, to_ref(ir).v);
    }
  }
  // A window of -inf reports its first cell inside the input (not a padding cell), as PyTorch.
  Tensor minus_inf = full({1, 1, 3, 3}, -INFINITY, {kFloat32, device});
  minus_inf.requires_grad_();
  auto [vi, ii] = nn::max_pool2d_with_indices(minus_inf, {3, 3}, {2, 2}, {1, 1});
  check_equal_values(ii, {0, 1, 3, 4});  // windows start at rows and columns -1 and 1
  check_equal_values(grad({vi}, {minus_inf}, {ones({1, 1, 2, 2}, {kFloat32, device})})[0],
                     {1, 1, 0, 1, 1, 0, 0, 0, 0});
  // The values may be changed in place before backward (the op keeps only the indices).
  Tensor xv = from_ref(random_ref({1, 2, 4, 4}, -1, 1, 26), kFloat32, device);
  xv.requires_grad_();
  Tensor pooled = nn::max_pool2d(xv, {2, 2});
  add_(pooled, 1.0);
  CHECK(sum(grad({sum(pooled)}, {xv})[0]).item<float>() == 8.0f);
  // A NaN wins its window, as in PyTorch.
  Tensor nan_in = from_vector<float>({0, std::nanf(""), 1, 2}, {1, 1, 2, 2}, {kFloat32, device});
  CHECK(std::isnan(nn::max_pool2d(nan_in, {2, 2}).item<float>()));
}

DEVICE_TEST("vision: adaptive pooling cells follow PyTorch's ranges") {
  Ref x = random_ref({1, 2, 5, 7}, -1, 1, 31);
  Tensor t = from_ref(x, kFloat64, device);
  Tensor avg = nn::adaptive_avg_pool2d(t, {3, 4});
  auto [mx, idx] = nn::adaptive_max_pool2d(t, {3, 4});
  Ref ar = to_ref(avg), mr = to_ref(mx), ir = to_ref(idx);
  for (int64_t c = 0; c < 2; ++c)
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t j = 0; j < 4; ++j) {
        const int64_t r0 = i * 5 / 3, r1 = ((i + 1) * 5 + 2) / 3, c0 = j * 7 / 4, c1 = ((j + 1) * 7 + 3) / 4;
        double total = 0, best = -1e300;
        int64_t arg = -1;
        for (int64_t y = r0; y < r1; ++y)
          for (int64_t xx = c0; xx < c1; ++xx) {
            total += x.at({0, c, y, xx});
            if (x.at({0, c, y, xx}) > best) best = x.at({0, c, y, xx}), arg = y * 7 + xx;
          }
        const size_t at = static_cast<size_t>((c * 3 + i) * 4 + j);
        CHECK(ar.v[at] == doctest::Approx(total / static_cast<double>((r1 - r0) * (c1 - c0))).epsilon(1e-12));
        CHECK(mr.v[at] == best);
        CHECK(ir.v[at] == arg);
      }
  Tensor g = random_leaf({1, 2, 5, 7}, device, 32);
  check_gradcheck("adaptive_avg_pool2d", [](const TensorList& in) { return TensorList{nn::adaptive_avg_pool2d(in[0], {3, 4})}; }, {g});
}

DEVICE_TEST("vision: batch norm trains on batch statistics, updates running ones, evaluates with them") {
  Ref xr = random_ref({4, 3, 2, 5}, -2, 3, 41);
  Tensor x = from_ref(xr, kFloat64, device);
  Tensor rm = zeros({3}, {kFloat64, device}), rv = ones({3}, {kFloat64, device});
  Tensor w = from_ref(random_ref({3}, 0.5, 2, 42), kFloat64, device), b = from_ref(random_ref({3}, -1, 1, 43), kFloat64, device);
  Tensor y = nn::batch_norm(x, rm, rv, w, b, true, 0.1, 1e-5);
  for (int64_t c = 0; c < 3; ++c) {
    double m = 0, v = 0;
    for (int64_t n = 0; n < 4; ++n)
      for (int64_t i = 0; i < 10; ++i) m += xr.v[(n * 3 + c) * 10 + i] / 40;
    for (int64_t n = 0; n < 4; ++n)
      for (int64_t i = 0; i < 10; ++i) v += std::pow(xr.v[(n * 3 + c) * 10 + i] - m, 2) / 40;
    CHECK(rm.select(0, c).item<double>() == doctest::Approx(0.1 * m).epsilon(1e-12));
    CHECK(rv.select(0, c).item<double>() == doctest::Approx(0.9 + 0.1 * v * 40 / 39).epsilon(1e-12));
    const double want = (xr.v[(1 * 3 + c) * 10 + 3] - m) / std::sqrt(v + 1e-5) * w.select(0, c).item<double>() +
                        b.select(0, c).item<double>();
    CHECK(y.select(0, 1).select(0, c).reshape({-1}).select(0, 3).item<double>() == doctest::Approx(want).epsilon(1e-12));
  }
  Tensor e = nn::batch_norm(x, rm, rv, w, b, false, 0.1, 1e-5);
  Tensor want = add(mul(div(sub(x, rm.reshape({1, 3, 1, 1})), sqrt(add(rv.reshape({1, 3, 1, 1}), 1e-5))), w.reshape({1, 3, 1, 1})),
                    b.reshape({1, 3, 1, 1}));
  check_close(e, to_ref(want), kFloat64);
  Tensor xl = random_leaf({3, 2, 2, 3}, device, 44), wl = random_leaf({2}, device, 45), bl = random_leaf({2}, device, 46);
  check_gradcheck("batch_norm training", [](const TensorList& in) {
    return TensorList{nn::batch_norm(in[0], Tensor(), Tensor(), in[1], in[2], true)};
  }, {xl, wl, bl});
  check_gradcheck("batch_norm training, running statistics, no weight", [&](const TensorList& in) {
    Tensor m = zeros({2}, {kFloat64, device}), v = ones({2}, {kFloat64, device});
    return TensorList{nn::batch_norm(in[0], m, v, Tensor(), in[1], true)};
  }, {random_leaf({4, 2, 3}, device, 50), random_leaf({2}, device, 51)});
  check_gradcheck("batch_norm evaluation", [&](const TensorList& in) {
    return TensorList{nn::batch_norm(in[0], rm, rv, in[1], in[2], false)};
  }, {random_leaf({3, 3, 2, 3}, device, 52), random_leaf({3}, device, 53), random_leaf({3}, device, 54)});
  check_gradgradcheck("batch_norm training, second order", [](const TensorList& in) {
    return TensorList{nn::batch_norm(in[0], Tensor(), Tensor(), in[1], in[2], true)};
  }, {random_leaf({3, 2, 2}, device, 55), random_leaf({2}, device, 56), random_leaf({2}, device, 57)});
  check_gradcheck("group_norm", [](const TensorList& in) { return TensorList{nn::group_norm(in[0], 2, in[1], in[2])}; },
                   {random_leaf({2, 4, 3}, device, 47), random_leaf({4}, device, 48), random_leaf({4}, device, 49)});
  Tensor gn = nn::group_norm(from_ref(xr, kFloat64, device), 3);
  check_close(mean(gn.reshape({4, 3, -1}), {2}), to_ref(zeros({4, 3}, {kFloat64})), kFloat64);
}

DEVICE_TEST("vision: nearest and bilinear resizing, pixel shuffle") {
  Ref x = random_ref({1, 1, 3, 4}, -1, 1, 51);
  Tensor t = from_ref(x, kFloat64, device);
  Ref near = to_ref(nn::interpolate(t, {5, 7}, "nearest"));
  for (int64_t i = 0; i < 5; ++i)
    for (int64_t j = 0; j < 7; ++j)
      CHECK(near.v[i * 7 + j] == x.at({0, 0, std::min<int64_t>(static_cast<int64_t>(i * (3.0f / 5)), 2),
                                       std::min<int64_t>(static_cast<int64_t>(j * (4.0f / 7)), 3)}));
  // align_corners: the corners are kept and the middle interpolates linearly.
  Ref bl = to_ref(nn::interpolate(t, {5, 7}, "bilinear", true));
  CHECK(bl.v[0] == doctest::Approx(x.v[0]));
  CHECK(bl.v[34] == doctest::Approx(x.v[11]));
  CHECK(bl.v[2 * 7 + 0] == doctest::Approx(x.at({0, 0, 1, 0})));
  CHECK(bl.v[0 * 7 + 1] == doctest::Approx(x.v[0] * 0.5 + x.v[1] * 0.5));
  // Half-pixel centres without align_corners: doubling a 2x2 gives PyTorch's 0.25/0.75 mix.
  Tensor two = from_vector<double>({0, 1, 2, 3}, {1, 1, 2, 2}, {kFloat64, device});
  check_close(nn::interpolate(two, {4, 4}, "bilinear").select(2, 0).reshape({-1}), to_ref(tensor({0, 0.25, 0.75, 1}, {kFloat64})), kFloat64);
  check_gradcheck("bilinear", [](const TensorList& in) { return TensorList{nn::interpolate(in[0], {5, 3}, "bilinear")}; },
                   {random_leaf({1, 2, 3, 4}, device, 52)});
  check_error([&] { nn::interpolate(zeros({1, 1, 0, 4}, {kFloat64, device}), {2, 2}, "bilinear"); },
              ErrorCode::ShapeMismatch, "empty plane");
  check_error([&] { nn::pixel_shuffle(zeros({1, 4, 2, 2}, {kFloat64, device}), int64_t{1} << 32); },
              ErrorCode::InvalidArgument, "out of range");
  // Scale factors change the source positions as in PyTorch (1/scale rather than in/out).
  Tensor five = from_ref(random_ref({1, 1, 5, 5}, -1, 1, 53), kFloat64, device);
  Tensor by_size = nn::interpolate(five, {7, 7}, "bilinear");
  Tensor by_scale = nn::interpolate(five, {7, 7}, "bilinear", false, std::array<double, 2>{1.5, 1.5});
  CHECK(amax(abs(sub(by_size, by_scale))).item<double>() > 1e-3);
  Tensor ps = nn::pixel_shuffle(arange(16, {kFloat64, device}).reshape({1, 4, 2, 2}), 2);
  check_equal_values(ps.reshape({-1}), {0, 4, 1, 5, 8, 12, 9, 13, 2, 6, 3, 7, 10, 14, 11, 15});
}

TEST_CASE("vision: modules use PyTorch's names, shapes, buffers and initial bounds") {
  manual_seed(0);
  nn::Conv2d conv(4, 8, {3, 3}, {.stride = {2, 2}, .padding = {1, 1}, .groups = 2});
  auto p = conv.named_parameters();
  REQUIRE(p.size() == 2);
  CHECK(p[0].first == "weight");
  CHECK(p[0].second.sizes() == Shape{8, 2, 3, 3});
  const double bound = 1 / std::sqrt(18.0);  // kaiming-uniform a = √5: 1/√fan_in
  CHECK(amax(abs(p[0].second)).item<double>() <= bound);
  CHECK(amax(abs(p[1].second)).item<double>() <= bound);
  CHECK(conv(randn({2, 4, 9, 9})).sizes() == Shape{2, 8, 5, 5});
  nn::BatchNorm2d bn(8);
  auto names = bn.state_dict();
  for (const char* k : {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"}) CHECK(names.count(k) == 1);
  bn(randn({2, 8, 3, 3}));
  bn(randn({2, 8, 3, 3}));
  CHECK(bn.state_dict().at("num_batches_tracked").item<int64_t>() == 2);
  bn.eval();
  CHECK(bn(randn({1, 8, 2, 2})).sizes() == Shape{1, 8, 2, 2});
  nn::ConvTranspose2d up(8, 4, {3, 3}, {2, 2}, {1, 1}, {1, 1});
  CHECK(up.named_parameters()[0].second.sizes() == Shape{8, 4, 3, 3});
  CHECK(up(randn({1, 8, 5, 5})).sizes() == Shape{1, 4, 10, 10});
  check_error([] { nn::Conv2d(3, 8, {3, 3}, {.groups = 2}); }, ErrorCode::InvalidArgument, "divisible by groups");
}

// Sets cuda::cudnn_exact for a scope.
struct CudnnExact {
  explicit CudnnExact(bool on) { cuda::set_cudnn_exact(on); }
  ~CudnnExact() { cuda::set_cudnn_exact(false); }
};

// max |a − ref| / max |ref|, the measure for algorithms (FFT, Winograd) whose error is spread
// over the output rather than relative to each element.
double error_relative_to_max(const Tensor& a, const Tensor& ref) {
  Tensor r = ref.to(kFloat64).to(a.device());
  return amax(abs(sub(a.to(kFloat64), r))).item<double>() / amax(abs(r)).item<double>();
}

DEVICE_TEST("vision: the conv2d kernel equals the reference path, channels-last and half types included") {
  // On CUDA the kernel is cuDNN's, here restricted to algorithms that sum directly so that each
  // element can be compared; on the CPU it is the reference itself.
  CudnnExact exact(true);
  for (auto [stride, padding, dilation, groups] : std::vector<std::tuple<Pair, Pair, Pair, int64_t>>{
           {{1, 1}, {1, 1}, {1, 1}, 1}, {{2, 2}, {3, 3}, {1, 1}, 1}, {{1, 2}, {2, 1}, {2, 2}, 4}, {{1, 1}, {1, 1}, {1, 1}, 16}}) {
    const int64_t sh = stride[0], group_count = groups;  // clang 14 lambdas cannot capture structured bindings
    INFO("stride ", sh, " groups ", group_count);
    Tensor x = from_ref(random_ref({3, 16, 13, 11}, -1, 1, 61), kFloat32, device);
    Tensor w = from_ref(random_ref({32, 16 / groups, 3, 3}, -1, 1, 62), kFloat32, device);
    Tensor b = from_ref(random_ref({32}, -1, 1, 63), kFloat32, device);
    Ref want = to_ref(conv2d_reference(x.to(kFloat64), w.to(kFloat64), b.to(kFloat64), stride, padding, dilation, groups));
    check_close(nn::conv2d(x, w, b, stride, padding, dilation, groups), want, kFloat32, 10);
    // The same values laid out channels-last: NCHW sizes with NHWC strides.
    Tensor x_cl = x.permute({0, 2, 3, 1}).contiguous().permute({0, 3, 1, 2});
    REQUIRE(x_cl.strides()[1] == 1);
    check_close(nn::conv2d(x_cl, w, b, stride, padding, dilation, groups), want, kFloat32, 10);
    for (DType half : {kFloat16, kBFloat16}) {
      INFO(half);
      Tensor y = nn::conv2d(x.to(half), w.to(half), b.to(half), stride, padding, dilation, groups);
      CHECK(y.dtype() == half);
      // Inputs rounded to the half type, sums of up to 144 products: compare against the float64 result.
      const double tol = half == kFloat16 ? 2e-2 : 1.5e-1;
      CHECK(amax(abs(sub(y.to(kFloat64), from_ref(want, kFloat64, device)))).item<double>() < tol);
    }
    // Gradients (cuDNN's backward-data and backward-filter kernels on CUDA) against float64 ones
    // from the public-op forms, for both layouts and a gradient with zero strides.
    const ConvParams params{stride, padding, dilation, groups};
    Tensor g = from_ref(random_ref(want.shape, -1, 1, 64), kFloat32, device);
    Ref want_dx = to_ref(conv2d_input_grad_reference(g.to(kFloat64), w.to(kFloat64), x.sizes(), params));
    Ref want_dw = to_ref(conv2d_weight_grad_reference(x.to(kFloat64), g.to(kFloat64), w.sizes(), params));
    for (const Tensor& input : {x, x_cl}) {
      Tensor xi = input.detach(), wi = w.detach().clone(), bi = b.detach().clone();
      xi.requires_grad_();
      wi.requires_grad_();
      bi.requires_grad_();
      TensorList grads = grad({nn::conv2d(xi, wi, bi, stride, padding, dilation, groups)}, {xi, wi, bi}, {g});
      check_close(grads[0], want_dx, kFloat32, 10);
      check_close(grads[1], want_dw, kFloat32, 100);  // sums of N·OH·OW products
      check_close(grads[2], to_ref(sum(g.to(kFloat64), {0, 2, 3})), kFloat32, 10);
    }
    Tensor xe = x.detach().clone();
    xe.requires_grad_();
    Tensor y_sum = sum(nn::conv2d(xe, w, b, stride, padding, dilation, groups));  // its gradient is expanded
    Tensor dx_ones = grad({y_sum}, {xe})[0];
    Tensor ones_g = ones(want.shape, {kFloat64, device});
    check_close(dx_ones, to_ref(conv2d_input_grad_reference(ones_g, w.to(kFloat64), x.sizes(), params)), kFloat32, 10);
  }
  // Algorithms chosen by timing (cudnn_benchmark) give the same values, forward and backward.
  cuda::set_cudnn_benchmark(true);
  Tensor x = from_ref(random_ref({4, 8, 12, 12}, -1, 1, 65), kFloat32, device);
  Tensor w = from_ref(random_ref({16, 8, 3, 3}, -1, 1, 66), kFloat32, device);
  x.requires_grad_();
  w.requires_grad_();
  Tensor y = nn::conv2d(x, w, Tensor(), {1, 1}, {1, 1});
  Tensor g = from_ref(random_ref(y.sizes(), -1, 1, 67), kFloat32, device);
  TensorList grads = grad({y}, {x, w}, {g});
  cuda::set_cudnn_benchmark(false);
  const ConvParams params{{1, 1}, {1, 1}, {1, 1}, 1};
  Tensor x64 = x.detach().to(kFloat64), w64 = w.detach().to(kFloat64), g64 = g.to(kFloat64);
  check_close(y, to_ref(conv2d_reference(x64, w64, Tensor(), {1, 1}, {1, 1}, {1, 1}, 1)), kFloat32, 10);
  check_close(grads[0], to_ref(conv2d_input_grad_reference(g64, w64, x.sizes(), params)), kFloat32, 10);
  check_close(grads[1], to_ref(conv2d_weight_grad_reference(x64, g64, w.sizes(), params)), kFloat32, 100);
}

DEVICE_TEST("vision: conv2d with cuDNN's default algorithm choice (FFT and Winograd allowed), resnet shapes") {
  // PyTorch's choice: what cuDNN's heuristics rank first, FFT and Winograd included, whose error
  // is spread over the output (PyTorch's own 3×3 weight gradient: 7e-5 of its largest value).
  // On the CPU, where no algorithm is chosen, a batch of 2 covers the same shapes at a quarter of
  // the time (this case took 55 s of the suite's 184 under ASan at batch 8).
  const int64_t batch = device.is_cuda() ? 8 : 2;
  for (auto [c, hw, k, stride] : std::vector<std::tuple<int64_t, int64_t, int64_t, int64_t>>{
           {64, 28, 3, 1}, {64, 28, 1, 1}, {32, 29, 3, 2}, {16, 56, 7, 2}}) {
    const int64_t ch = c, kk = k, st = stride;  // clang 14 lambdas cannot capture structured bindings
    INFO("channels ", ch, " kernel ", kk, " stride ", st);
    Tensor x = from_ref(random_ref({batch, c, hw, hw}, -1, 1, 90), kFloat32, device);
    Tensor w = from_ref(random_ref({c, c, k, k}, -1, 1, 91), kFloat32, device);
    x.requires_grad_();
    w.requires_grad_();
    const ConvParams p{{stride, stride}, {k / 2, k / 2}, {1, 1}, 1};
    Tensor y = nn::conv2d(x, w, Tensor(), p.stride, p.padding);
    Tensor g = from_ref(random_ref(y.sizes(), -1, 1, 92), kFloat32, device);
    TensorList grads = grad({y}, {x, w}, {g});
    Tensor x64 = x.detach().to(kFloat64), w64 = w.detach().to(kFloat64), g64 = g.to(kFloat64);
    CHECK(error_relative_to_max(y, conv2d_reference(x64, w64, Tensor(), p.stride, p.padding, p.dilation, 1)) < 2e-5);
    CHECK(error_relative_to_max(grads[0], conv2d_input_grad_reference(g64, w64, x.sizes(), p)) < 2e-5);
    CHECK(error_relative_to_max(grads[1], conv2d_weight_grad_reference(x64, g64, w.sizes(), p)) < 3e-4);
  }
}

DEVICE_TEST("vision: the batch-norm kernels equal the reference path for 2-, 3- and 4-d inputs") {
  // On CUDA, float32 runs cuDNN's kernels; the reference is the public-op form in float64.
  uint64_t seed = 70;
  for (const Shape& shape : std::vector<Shape>{{16, 6}, {4, 6, 9}, {4, 6, 5, 7}}) {
    INFO(shape_str(shape));
    Tensor x = from_ref(random_ref(shape, -2, 3, seed++), kFloat32, device);
    Tensor w = from_ref(random_ref({6}, 0.5, 2, seed++), kFloat32, device);
    Tensor b = from_ref(random_ref({6}, -1, 1, seed++), kFloat32, device);
    Tensor rm = from_ref(random_ref({6}, -1, 1, seed++), kFloat32, device);
    Tensor rv = from_ref(random_ref({6}, 0.5, 2, seed++), kFloat32, device);
    Tensor rm64 = rm.to(kFloat64), rv64 = rv.to(kFloat64);
    TensorList want = batch_norm_forward_reference(x.to(kFloat64), w.to(kFloat64), b.to(kFloat64), true, 0.1, 1e-5,
                                                   rm64, rv64);
    Tensor xi = x.detach().clone(), wi = w.detach().clone(), bi = b.detach().clone();
    for (const Tensor* t : {&xi, &wi, &bi}) t->requires_grad_();
    Tensor y = nn::batch_norm(xi, rm, rv, wi, bi, true, 0.1, 1e-5);
    check_close(y, to_ref(want[0]), kFloat32, 10);
    check_close(rm, to_ref(rm64), kFloat32, 10);
    check_close(rv, to_ref(rv64), kFloat32, 10);
    Tensor g = from_ref(random_ref(shape, -1, 1, seed++), kFloat32, device);
    TensorList grads = grad({y}, {xi, wi, bi}, {g});
    TensorList want_grads = batch_norm_backward_reference(x.to(kFloat64), g.to(kFloat64), w.to(kFloat64), want[1], want[2]);
    for (int i = 0; i < 3; ++i) check_close(grads[i], to_ref(want_grads[i]), kFloat32, 100);
    // Evaluation: the running statistics.
    Tensor e = nn::batch_norm(x, rm, rv, w, b, false, 0.1, 1e-5);
    check_close(e, to_ref(batch_norm_forward_reference(x.to(kFloat64), w.to(kFloat64), b.to(kFloat64), false, 0.1,
                                                       1e-5, rm.to(kFloat64), rv.to(kFloat64))[0]), kFloat32, 10);
  }
  // The output may be changed in place before backward (y += identity, as a resnet block does).
  Tensor xr = from_ref(random_ref({4, 3, 5}, -1, 1, 81), kFloat32, device);
  xr.requires_grad_();
  Tensor yr = nn::batch_norm(xr, Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-5);
  add_(yr, 1.0);
  Tensor gr = grad({sum(mul(yr, yr))}, {xr})[0];
  CHECK(std::isfinite(amax(abs(gr)).item<float>()));
  // Without weight and bias (affine=False) and without running statistics.
  Tensor x = from_ref(random_ref({3, 4, 5}, -1, 1, 80), kFloat32, device);
  Tensor plain = nn::batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-5);
  check_close(plain, to_ref(batch_norm_forward_reference(x.to(kFloat64), Tensor(), Tensor(), true, 0.1, 1e-5, Tensor(),
                                                         Tensor())[0]), kFloat32, 10);
  // Half types take the public-op form, accumulating in float32.
  Tensor xh = x.to(kFloat16);
  Tensor yh = nn::batch_norm(xh, Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-5);
  CHECK(yh.dtype() == kFloat16);
  CHECK(amax(abs(sub(yh.to(kFloat32), plain))).item<double>() < 5e-3);
  check_error([&] { nn::batch_norm(x, ones({4}, {kFloat32, device}), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-5); },
              ErrorCode::InvalidArgument, "both");
}

TEST_CASE("vision: the CPU conv2d kernel's paths equal the reference: 1×1 as is, unfolded, grouped, depthwise") {
  // ops/cpu/conv.cpp picks a path by shape; each against conv2d_reference (public ops), float64.
  struct Case {
    int64_t c, o, k, groups;
    Pair stride, padding, dilation;
    bool bias, channels_last;
  };
  const std::vector<Case> cases = {
      {8, 12, 1, 1, {1, 1}, {0, 0}, {1, 1}, true, false},   // 1×1, stride 1: the input read as it is
      {8, 12, 1, 1, {2, 2}, {0, 0}, {1, 1}, false, false},  // 1×1, stride 2: unfolded
      {6, 10, 3, 1, {1, 2}, {1, 2}, {1, 1}, true, true},    // channels-last input, asymmetric stride and padding
      {6, 9, 3, 3, {2, 1}, {3, 1}, {2, 1}, true, false},    // grouped, dilation, padding wider than the kernel's reach
      {8, 8, 3, 8, {1, 1}, {1, 1}, {1, 1}, true, false},    // depthwise
      {4, 12, 5, 4, {2, 2}, {2, 2}, {2, 2}, false, true},   // depthwise, channel multiplier 3, stride and dilation
  };
  for (const Case& c : cases) {
    INFO("C ", c.c, " O ", c.o, " k ", c.k, " groups ", c.groups);
    Tensor x = from_ref(random_ref({2, c.c, 11, 9}, -1, 1, 71), kFloat64, Device::cpu());
    if (c.channels_last) x = x.permute({0, 2, 3, 1}).contiguous().permute({0, 3, 1, 2});
    Tensor w = from_ref(random_ref({c.o, c.c / c.groups, c.k, c.k}, -1, 1, 72), kFloat64, Device::cpu());
    Tensor b = c.bias ? from_ref(random_ref({c.o}, -1, 1, 73), kFloat64, Device::cpu()) : Tensor();
    const Tensor want = conv2d_reference(x, w, b, c.stride, c.padding, c.dilation, c.groups);
    for (DType dt : {kFloat64, kFloat32}) {
      const Tensor got = nn::conv2d(x.to(dt), w.to(dt), c.bias ? b.to(dt) : Tensor(), c.stride, c.padding, c.dilation,
                                    c.groups);
      REQUIRE(got.sizes() == want.sizes());
      const double err = max(abs(sub(got.to(kFloat64), want))).item<double>() / max(abs(want)).item<double>();
      CHECK(err <= (dt == kFloat64 ? 1e-14 : 1e-6));
    }
  }
}

DEVICE_TEST("vision: conv2d_fused adds its bias and residual and clamps in one pass (against float64)") {
  // x [2, 4, 6, 5], weight [6, 2, 3, 3], groups 2, padding 1: output [2, 6, 6, 5].
  const Ref x = random_ref({2, 4, 6, 5}, -1, 1, 31), w = random_ref({6, 2, 3, 3}, -1, 1, 32),
            b = random_ref({6}, -1, 1, 33);
  Ref r = random_ref({2, 6, 6, 5}, -1, 1, 34);
  r.v[7] = std::nan("");  // a NaN in the residual stays NaN through the relu
  struct Case {
    bool bias, residual;
    std::optional<double> lo, hi;
  };
  for (const Case c : {Case{true, true, 0.0, std::nullopt}, Case{true, false, 0.0, 6.0}, Case{false, true, -0.5, 0.5},
                       Case{false, false, std::nullopt, 1.0}, Case{true, true, std::nullopt, std::nullopt}}) {
    INFO("bias " << c.bias << ", residual " << c.residual << ", lo " << c.lo.value_or(-99) << ", hi "
                 << c.hi.value_or(99));
    for (DType dtype : kFloatTypes) {
      INFO(dtype);
      // The reference from the inputs as the dtype holds them, summed in float64.
      const Ref xd = round_to(x, dtype), wd = round_to(w, dtype), bd = round_to(b, dtype), rd = round_to(r, dtype);
      Ref want = direct_conv(xd, wd, c.bias ? &bd : nullptr, {1, 1}, {1, 1}, {1, 1}, 2);
      for (size_t i = 0; i < want.v.size(); ++i) {
        double v = want.v[i] + (c.residual ? rd.v[i] : 0.0);
        if (c.lo && v < *c.lo) v = *c.lo;
        if (c.hi && v > *c.hi) v = *c.hi;
        want.v[i] = v;
      }
      NoGradGuard no_grad;
      const Tensor y = conv2d_fused(from_ref(x, dtype, device), from_ref(w, dtype, device),
                                    c.bias ? from_ref(b, dtype, device) : Tensor(),
                                    c.residual ? from_ref(r, dtype, device) : Tensor(), c.lo, c.hi, {1, 1}, {1, 1},
                                    {1, 1}, 2);
      CHECK(y.dtype() == dtype);
      // Terms of up to 20 in magnitude (18 products, the bias, the residual) summed with the
      // dtype's rounding: an absolute tolerance of 20 of its epsilons beside the relative one.
      const double eps = dtype == kFloat16 ? 0x1p-10 : dtype == kBFloat16 ? 0x1p-7 : dtype == kFloat32 ? 0x1p-23 : 0x1p-52;
      Ref atol = want;
      for (double& v : atol.v) v = 20 * eps;
      check_close(y, want, dtype, 10, atol);
      if (c.residual && !c.hi) CHECK(std::isnan(to_ref(y).v[7]));
    }
  }
  const Tensor x32 = from_ref(x, kFloat32, device), w32 = from_ref(w, kFloat32, device);
  check_error([&] { conv2d_fused(x32, w32, Tensor(), zeros({2, 6, 6, 4}, {kFloat32, device}), 0.0, std::nullopt,
                                 {1, 1}, {1, 1}, {1, 1}, 2); },
              ErrorCode::ShapeMismatch, "the residual is [2, 6, 6, 4]");
  const Tensor w_grad = from_ref(w, kFloat32, device).requires_grad_();
  check_error([&] { conv2d_fused(x32, w_grad, Tensor(), Tensor(), 0.0, std::nullopt, {1, 1}, {1, 1}, {1, 1}, 2); },
              ErrorCode::Unsupported, "is for inference");
}
