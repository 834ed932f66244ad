// mm, bmm, matmul (every broadcasting case), addmm and linear against a float64 triple loop.
#include <cmath>
#include <optional>

#include "tests/harness.h"

using namespace ember;
using namespace ember::test;

namespace {

// Naive batched product with NumPy/PyTorch matmul semantics on Refs.
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

// Matrix products sum k terms, so their rounding grows with k (PyTorch's tests scale the same way).
double matmul_scale(int64_t k) { return std::max<double>(1, k / 4.0); }

}  // namespace

DEVICE_TEST("matmul covers dot, matrix-vector, matrix-matrix and broadcast batches") {
  const std::vector<std::pair<Shape, Shape>> cases = {
      {{5}, {5}},          {{3, 5}, {5}},          {{5}, {5, 4}},          {{3, 5}, {5, 4}},
      {{2, 3, 5}, {5, 4}}, {{2, 3, 5}, {2, 5, 4}}, {{2, 1, 3, 5}, {4, 5, 2}}, {{5}, {2, 5, 4}},
      {{2, 3, 5}, {5}},    {{3, 0}, {0, 4}},       {{0, 5}, {5, 4}},       {{1, 3, 5}, {2, 5, 4}},
      {{64, 33}, {33, 70}},
  };
  uint64_t seed = 1;
  for (DType dtype : {kFloat32, kFloat64, kFloat16, kBFloat16, kInt64, kInt32}) {
    for (const auto& [sa, sb] : cases) {
      for (Layout la : layouts_for(sa)) {
        for (Layout lb : {Layout::Contiguous, Layout::Transposed}) {
          if (lb == Layout::Transposed && sb.size() < 2) continue;
          const std::string shapes = shape_str(sa) + " @ " + shape_str(sb);  // clang 14: no captured bindings
          INFO("dtype ", std::string(dtype_name(dtype)), " ", shapes, " layouts ",
               std::string(layout_name(la)), "/", std::string(layout_name(lb)), " on ", device.str());
          Ref ra = is_floating(dtype) ? random_ref(sa, -1, 1, seed) : random_int_ref(sa, -3, 3, seed);
          Ref rb = is_floating(dtype) ? random_ref(sb, -1, 1, seed + 1) : random_int_ref(sb, -3, 3, seed + 1);
          seed += 2;
          Tensor a = make_input(ra, dtype, device, la), b = make_input(rb, dtype, device, lb);
          check_close(matmul(a, b), ref_matmul(ra, rb), dtype, matmul_scale(sa.back()));
        }
      }
    }
  }
}

TEST_CASE("matmul: 8- and 32-bit integer products wrap as PyTorch's (computed through int64 on the CPU)") {
  // 100·2 + 100·1 = 300 ≡ 44 (mod 256); int32: 2^30·2 + 2^30·2 = 2^32 ≡ 0 (mod 2^32).
  check_equal_values(matmul(tensor({100, 100}, {kInt8}).reshape({1, 2}), tensor({2, 1}, {kInt8}).reshape({2, 1})), {44});
  check_equal_values(matmul(tensor({200, 100}, {kUInt8}).reshape({1, 2}), tensor({1, 1}, {kUInt8}).reshape({2, 1})), {44});
  check_equal_values(matmul(tensor({-100, -100}, {kInt8}).reshape({1, 2}), tensor({2, 1}, {kInt8}).reshape({2, 1})), {-44});
  const double big = 1 << 30;
  check_equal_values(matmul(tensor({big, big}, {kInt32}).reshape({1, 2}), tensor({2, 2}, {kInt32}).reshape({2, 1})), {0});
  const Tensor y = addmm(tensor({1, 2}, {kInt8}), tensor({3, 4, 5, 6}, {kInt8}).reshape({2, 2}),
                         tensor({7, 8, 9, 10}, {kInt8}).reshape({2, 2}));
  CHECK(y.dtype() == kInt8);
  // [[3·7+4·9, 3·8+4·10], [5·7+6·9, 5·8+6·10]] + [1, 2] = [[58, 66], [90, 102]]
  check_equal_values(y, {58, 66, 90, 102});
}

DEVICE_TEST("mm, bmm, addmm, linear") {
  uint64_t seed = 50;
  for (DType dtype : {kFloat32, kFloat64, kFloat16, kBFloat16}) {
    INFO("dtype ", std::string(dtype_name(dtype)));
    Ref ra = random_ref({4, 6}, -1, 1, seed++), rb = random_ref({6, 3}, -1, 1, seed++);
    Tensor a = make_input(ra, dtype, device, Layout::Transposed), b = make_input(rb, dtype, device, Layout::Stepped);
    check_close(mm(a, b), ref_matmul(ra, rb), dtype, 2);
    Ref ba = random_ref({3, 4, 6}, -1, 1, seed++), bb = random_ref({3, 6, 5}, -1, 1, seed++);
    // make_input rounds the Refs in place: build the tensors before the references.
    Tensor ta = make_input(ba, dtype, device, Layout::Contiguous), tb = make_input(bb, dtype, device, Layout::Transposed);
    check_close(bmm(ta, tb), ref_matmul(ba, bb), dtype, 2);
    // addmm with a broadcast bias, beta and alpha.
    Ref bias = random_ref({3}, -1, 1, seed++);
    Tensor tbias = make_input(bias, dtype, device, Layout::Contiguous);
    Tensor r = addmm(tbias, a, b, 0.5, 2.0);
    Ref prod = ref_matmul(ra, rb);
    check_close(r, zip_ref(prod, bias, [](double p, double c) { return 0.5 * c + 2 * p; }), dtype, 4);
    // beta = 0 ignores the bias entirely (even NaN), as PyTorch does.
    Tensor nan_bias = full({4, 3}, NAN, {dtype, device});
    check_close(addmm(nan_bias, a, b, 0.0, 1.0), prod, dtype, 2);
    // linear: x [2, 3, 6] @ w[5, 6]^T + b[5].
    Ref rx = random_ref({2, 3, 6}, -1, 1, seed++), rw = random_ref({5, 6}, -1, 1, seed++), rbias = random_ref({5}, -1, 1, seed++);
    Tensor x = make_input(rx, dtype, device, Layout::Contiguous), w = make_input(rw, dtype, device, Layout::Contiguous);
    Tensor lb = make_input(rbias, dtype, device, Layout::Contiguous);
    Tensor y = linear(x, w, lb);
    Ref wt{{6, 5}, std::vector<double>(30)};
    for (int i = 0; i < 5; ++i)
      for (int j = 0; j < 6; ++j) wt.v[j * 5 + i] = rw.v[i * 6 + j];
    check_close(y, zip_ref(ref_matmul(rx, wt), rbias, [](double p, double c) { return p + c; }), dtype, 2);
    check_close(linear(x, w), ref_matmul(rx, wt), dtype, 2);
  }
}

DEVICE_TEST("matmul: errors name the op and what was expected") {
  Tensor a = zeros({2, 3}, {kFloat32, device});
  check_error([&] { matmul(a, zeros({4, 2}, {kFloat32, device})); }, ErrorCode::ShapeMismatch,
              "[matmul] shapes [2, 3] and [4, 2] cannot be multiplied (inner dimensions 3 and 4 differ)");
  check_error([&] { matmul(a, zeros({3, 2}, {kFloat64, device})); }, ErrorCode::DTypeMismatch,
              "[matmul] expected both inputs to have the same dtype, got float32 and float64");
  check_error([&] { mm(zeros({3}, {kFloat32, device}), a); }, ErrorCode::InvalidArgument, "[mm] expected 2-D inputs");
  check_error([&] { bmm(zeros({2, 2, 3}, {kFloat32, device}), zeros({3, 3, 2}, {kFloat32, device})); },
              ErrorCode::ShapeMismatch, "[bmm] batch sizes differ");
  check_error([&] { matmul(zeros({}, {kFloat32, device}), a); }, ErrorCode::InvalidArgument,
              "[matmul] both inputs need at least one dimension");
  check_error([&] { linear(a, zeros({4, 5}, {kFloat32, device})); }, ErrorCode::ShapeMismatch,
              "[linear] input of shape [2, 3] does not end in the weight's in_features 5");
  check_error([&] { matmul(ones({2, 2}, {kBool, device}), ones({2, 2}, {kBool, device})); }, ErrorCode::Unsupported,
              "[matmul] not supported for dtype bool");
}

namespace {

double ref_gelu_tanh(double v) {
  return 0.5 * v * (1 + std::tanh(0.79788456080286535588 * (v + 0.044715 * v * v * v)));
}

}  // namespace

DEVICE_TEST("linear with a fused activation (relu, tanh gelu) against float64: the shapes and biases cuBLASLt sees") {
  // Rows × in → out: one row (a batch-1 layer), an inner size of 1, one output, and sizes that
  // are not multiples of any tile; a bias that is absent, contiguous, or a view at an odd offset
  // (under the 16 bytes cuBLASLt's epilogue reads, so the plain path runs); weights as stored
  // and transposed.
  // On CUDA both paths: cuBLASLt's epilogues and the plain cuBLAS product with the bias copied
  // in and the activation applied after.
  const std::vector<Shape> xs = {{1, 6}, {7, 1}, {4, 6}, {33, 40}, {2, 3, 6}};
  const std::vector<int64_t> outs = {5, 3, 1, 24, 5};
  uint64_t seed = 700;
  const bool epilogues_before = cuda::gemm_epilogues();
  for (bool epilogues : device.is_cuda() ? std::vector<bool>{true, false} : std::vector<bool>{false}) {
    cuda::set_gemm_epilogues(epilogues);
    for (DType dtype : {kFloat32, kFloat64, kFloat16, kBFloat16}) {
      for (size_t c = 0; c < xs.size(); ++c) {
        const int64_t in = xs[c].back(), out = outs[c];
        for (GemmActivation act : {GemmActivation::kNone, GemmActivation::kRelu, GemmActivation::kGeluTanh}) {
          for (int bias_kind = 0; bias_kind < 3; ++bias_kind) {
            for (Layout wl : {Layout::Contiguous, Layout::Transposed}) {
              INFO(std::string(dtype_name(dtype)), " x ", shape_str(xs[c]), " out ", out, " ",
                   std::string(gemm_activation_name(act)), " bias ", bias_kind, " weight ", std::string(layout_name(wl)),
                   " on ", device.str());
              Ref rx = random_ref(xs[c], -1, 1, seed++), rw = random_ref({out, in}, -1, 1, seed++);
              Ref rb = random_ref({out + 1}, -1, 1, seed++);
              Tensor x = make_input(rx, dtype, device, Layout::Contiguous), w = make_input(rw, dtype, device, wl);
              Tensor b_all = make_input(rb, dtype, device, Layout::Contiguous);
              std::optional<Tensor> bias;
              Ref rbias{{out}, std::vector<double>(static_cast<size_t>(out), 0.0)};
              if (bias_kind > 0) {
                const int64_t at = bias_kind == 2 ? 1 : 0;
                bias = b_all.slice(0, at, at + out);
                for (int64_t j = 0; j < out; ++j) rbias.v[j] = rb.v[at + j];
              }
              Ref wt{{in, out}, std::vector<double>(static_cast<size_t>(in * out))};
              for (int64_t i = 0; i < out; ++i)
                for (int64_t j = 0; j < in; ++j) wt.v[j * out + i] = rw.v[i * in + j];
              Ref pre = zip_ref(ref_matmul(rx, wt), rbias, [](double p, double b) { return p + b; });
              Ref want = act == GemmActivation::kRelu       ? map_ref(pre, [](double v) { return v > 0 ? v : 0; })
                         : act == GemmActivation::kGeluTanh ? map_ref(pre, ref_gelu_tanh)
                                                            : pre;
              INFO("cuBLASLt epilogues ", epilogues);
              check_close(linear(x, w, bias, act), want, dtype, matmul_scale(in) + 1);
            }
          }
        }
      }
    }
  }
  cuda::set_gemm_epilogues(epilogues_before);
  // Integer layers take relu (in place after the product); gelu needs a floating type.
  Tensor xi = tensor({1, -2, 3, 4}, {kInt64, device}).reshape({2, 2});
  Tensor wi = tensor({1, 1, -1, 0}, {kInt64, device}).reshape({2, 2});
  check_equal_values(linear(xi, wi, std::nullopt, GemmActivation::kRelu), {0, 0, 7, 0});
  check_error([&] { linear(xi, wi, std::nullopt, GemmActivation::kGeluTanh); }, ErrorCode::Unsupported,
              "[linear] gelu_tanh expects a floating-point input, got int64");
  check_error([] { gemm_activation_from("sigmoid", "linear"); }, ErrorCode::InvalidArgument,
              "[linear] activation must be \"none\", \"relu\" or \"gelu_tanh\", got \"sigmoid\"");
}

DEVICE_TEST("linear with a fused activation: gradcheck and gradgradcheck, with and without a bias") {
  for (GemmActivation act : {GemmActivation::kRelu, GemmActivation::kGeluTanh}) {
    const std::string name = std::string("linear ") + gemm_activation_name(act);
    Tensor x = random_leaf({3, 4}, device, 71), w = random_leaf({5, 4}, device, 72), b = random_leaf({5}, device, 73);
    check_gradcheck(name, [act](const TensorList& in) { return TensorList{linear(in[0], in[1], in[2], act)}; }, {x, w, b});
    check_gradcheck(name + " without bias",
                    [act](const TensorList& in) { return TensorList{linear(in[0], in[1], std::nullopt, act)}; }, {x, w});
    if (act == GemmActivation::kGeluTanh)
      check_gradgradcheck(name, [act](const TensorList& in) { return TensorList{linear(in[0], in[1], in[2], act)}; },
                          {x, w, b});
  }
}

TEST_CASE("matmul on the CPU: products cut into blocks, one per thread, match the float64 product") {
  // Above 2^18 multiply-adds a product's output is cut into up to one block per thread, along
  // its rows, its columns or both (gemm_grid in ops/cpu/matmul.cpp); the blocks' bounds fall
  // inside the register tiles' multiples only at the edges. Each case here is cut into several
  // blocks at the thread counts it runs with, transposed operands and addmm's beta included.
  const int saved = get_num_threads();
  struct Case {
    Shape a, b;
    int threads;
  };
  const std::vector<Case> cases = {
      {{100, 300}, {300, 70}, 7},  // 7 blocks of rows
      {{200, 400}, {400, 90}, 16},  // 8 × 2 blocks, the last column block 42 wide
      {{1, 9000}, {9000, 300}, 3},  // one row: blocks of columns
      {{513, 64}, {64, 17}, 5},     // 17 columns: 5 blocks of rows
      {{3, 40, 90}, {3, 90, 60}, 2},  // a batch of 3 on 2 threads: one product per thread
      {{2, 150, 90}, {90, 60}, 4},    // a batch of 2 on 4 threads: each product cut in blocks
  };
  uint64_t seed = 900;
  for (const Case& c : cases) {
    set_num_threads(c.threads);
    for (DType dtype : {kFloat32, kFloat64, kFloat16}) {
      for (Layout la : {Layout::Contiguous, Layout::Transposed}) {
        for (Layout lb : {Layout::Contiguous, Layout::Transposed}) {
          const std::string shapes = shape_str(c.a) + " @ " + shape_str(c.b);
          INFO(std::string(dtype_name(dtype)), " ", shapes, " on ", c.threads, " threads, layouts ",
               std::string(layout_name(la)), "/", std::string(layout_name(lb)));
          // Positive entries: sums of up to 9,000 terms without cancellation, so that float32's
          // rounding stays within a tolerance relative to the result (a block computed from the
          // wrong rows or columns, or not at all, is far outside it).
          Ref ra = random_ref(c.a, 0, 1, seed++), rb = random_ref(c.b, 0, 1, seed++);
          Tensor a = make_input(ra, dtype, Device::cpu(), la), b = make_input(rb, dtype, Device::cpu(), lb);
          const Ref prod = ref_matmul(ra, rb);
          check_close(matmul(a, b), prod, dtype, matmul_scale(c.a.back()));
          if (c.a.size() == 2) {
            Ref bias = random_ref({c.b.back()}, -1, 1, seed++);
            Tensor tbias = make_input(bias, dtype, Device::cpu(), Layout::Contiguous);
            check_close(addmm(tbias, a, b, 0.5, 2.0),
                        zip_ref(prod, bias, [](double p, double s) { return 0.5 * s + 2 * p; }), dtype,
                        matmul_scale(c.a.back()));
          }
        }
      }
    }
  }
  set_num_threads(saved);
}
