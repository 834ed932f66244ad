// mm, bmm, matmul (every broadcasting case), addmm and linear against a float64 triple loop.
#include <cmath>
#include <optional>

#include "tests/harness.h"

using namespace ember;
using namespace ember::test;


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
  // On CUDA three paths: cuBLASLt's epilogues, the plain cuBLAS product with the bias copied
  // in and the activation applied after, and cuBLASLt with its algorithm timed (autotune, with
  // or without an epilogue).
  const std::vector<Shape> xs = {{1, 6}, {7, 1}, {4, 6}, {33, 40}, {2, 3, 6}, {197, 64}};
  const std::vector<int64_t> outs = {5, 3, 1, 24, 5, 72};
  uint64_t seed = 700;
  const bool epilogues_before = cuda::gemm_epilogues(), autotune_before = cuda::gemm_autotune();
  enum class Path { Epilogues, Plain, Autotuned };
  for (Path path : device.is_cuda() ? std::vector<Path>{Path::Epilogues, Path::Plain, Path::Autotuned}
                                    : std::vector<Path>{Path::Plain}) {
    const bool epilogues = path == Path::Epilogues;
    cuda::set_gemm_epilogues(epilogues);
    cuda::set_gemm_autotune(path == Path::Autotuned);
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
              const Ref prod = ref_matmul(rx, wt);
              Ref pre = zip_ref(prod, rbias, [](double p, double b) { return p + b; });
              Ref want = act == GemmActivation::kRelu       ? map_ref(pre, [](double v) { return v > 0 ? v : 0; })
                         : act == GemmActivation::kGeluTanh ? map_ref(pre, ref_gelu_tanh)
                                                            : pre;
              INFO("cuBLASLt epilogues ", epilogues, ", autotuned ", path == Path::Autotuned);
              // cuBLAS and cuBLASLt round a half product to its type before adding the bias
              // (PyTorch's addmm, on the same libraries, does too): where the bias cancels the
              // product, the error follows the product's magnitude, not the result's. Allowed:
              // 1.5 units of rounding of |product| (the tanh gelu's slope is at most 1.13).
              const double unit = dtype == kFloat16 ? 0x1p-11 : dtype == kBFloat16 ? 0x1p-8 : 0;
              const Ref rounding = map_ref(prod, [&](double p) { return bias ? 1.5 * unit * std::fabs(p) : 0; });
              check_close(linear(x, w, bias, act), want, dtype, matmul_scale(in) + 1, rounding);
            }
          }
        }
      }
    }
  }
  cuda::set_gemm_epilogues(epilogues_before);
  cuda::set_gemm_autotune(autotune_before);
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
