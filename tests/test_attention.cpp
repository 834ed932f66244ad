// The fused attention kernel (ops/attention.h) against float64 attention and its gradients
// (computed by the math path, itself gradchecked in test_transformer.cpp), and against the
// math path in the same dtype: odd lengths, L != S, causal, grouped-query heads, strided
// inputs, both head dims and both half types (on Hopper, head dim 64 runs the sm_90a forward);
// double backward; the float32 inference kernel; and the errors.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "ops/attention.h"
#include "tests/harness.h"

using namespace ember;
using namespace ember::test;

namespace {

struct Config {
  int64_t batch, heads, kv_heads, L, S, D;
  bool causal;
};

// Largest |a − b| over the largest |b|, both taken as float64 on the CPU.
double relative_error(const Tensor& a, const Tensor& b) {
  const Tensor x = a.to(Device::cpu()).to(kFloat64), y = b.to(Device::cpu()).to(kFloat64);
  return max(abs(sub(x, y))).item<double>() / std::max(max(abs(y)).item<double>(), 1e-30);
}

struct Result {
  Tensor out, dq, dk, dv;
};

Result run(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& dout, const Config& c,
           nn::AttentionKernel kernel) {
  nn::AttentionKernelGuard guard(kernel);
  Tensor ql = q.detach().requires_grad_(), kl = k.detach().requires_grad_(), vl = v.detach().requires_grad_();
  Tensor out = nn::scaled_dot_product_attention(ql, kl, vl, Tensor(), 0, c.causal, std::nullopt, c.heads != c.kv_heads);
  TensorList g = grad({out}, {ql, kl, vl}, {dout});
  return {out.detach(), g[0], g[1], g[2]};
}

}  // namespace

TEST_CASE("attention: the fused kernel matches float64 attention and gradients [cuda]" *
          doctest::skip(!cuda_available())) {
  const Device cuda = Device::cuda(0);
  const std::vector<Config> configs = {
      {2, 4, 4, 100, 77, 64, false},  // lengths not multiples of the 64-row tiles
      {1, 3, 3, 130, 130, 64, true},  // causal, a partial diagonal tile
      {2, 4, 2, 64, 200, 64, false},  // grouped-query heads, more keys than queries
      {1, 2, 1, 70, 150, 128, true},  // causal with L < S, head dim 128, one key/value head
      {1, 2, 2, 150, 40, 128, false},
      // Head dim 64 on Hopper runs the sm_90a kernels (flash_attention_sm90*.cu): several query
      // blocks and key tiles, so the stage rings wrap; causal with L < S (key blocks no query
      // sees: zero dK, dV) and L > S; grouped heads 4:1.
      {1, 4, 1, 333, 520, 64, true},
      {2, 2, 2, 700, 300, 64, true},
      {1, 2, 2, 1000, 1000, 64, false},
  };
  for (DType dt : {kBFloat16, kFloat16}) {
    // Tolerances relative to each result's largest value: bfloat16 keeps 8 bits, float16 11.
    const double tol = dt == kBFloat16 ? 2e-2 : 4e-3;
    for (const Config& c : configs) {
      INFO(dt, " B", c.batch, " H", c.heads, "/", c.kv_heads, " L", c.L, " S", c.S, " D", c.D, std::string(c.causal ? " causal" : ""));
      manual_seed(11);
      Tensor q = randn({c.batch, c.heads, c.L, c.D}, {kFloat64, cuda}).to(dt);
      Tensor k = randn({c.batch, c.kv_heads, c.S, c.D}, {kFloat64, cuda}).to(dt);
      Tensor v = randn({c.batch, c.kv_heads, c.S, c.D}, {kFloat64, cuda}).to(dt);
      Tensor dout = randn({c.batch, c.heads, c.L, c.D}, {kFloat64, cuda}).to(dt);
      const Result want = run(q.to(kFloat64), k.to(kFloat64), v.to(kFloat64), dout.to(kFloat64), c, nn::AttentionKernel::Math);
      const Result fused = run(q, k, v, dout, c, nn::AttentionKernel::Fused);
      const Result math = run(q, k, v, dout, c, nn::AttentionKernel::Math);
      const double errors[4] = {relative_error(fused.out, want.out), relative_error(fused.dq, want.dq),
                                relative_error(fused.dk, want.dk), relative_error(fused.dv, want.dv)};
      const double math_errors[4] = {relative_error(math.out, want.out), relative_error(math.dq, want.dq),
                                     relative_error(math.dk, want.dk), relative_error(math.dv, want.dv)};
      std::printf("attention %s %s: fused error out %.2e dq %.2e dk %.2e dv %.2e (math path %.2e %.2e %.2e %.2e)\n",
                  dtype_name(dt), c.causal ? "causal" : "full", errors[0], errors[1], errors[2], errors[3],
                  math_errors[0], math_errors[1], math_errors[2], math_errors[3]);
      for (int i = 0; i < 4; ++i) {
        INFO("result ", i, " (out, dq, dk, dv)");
        CHECK(errors[i] <= tol);
        // No worse than the math path in the same dtype, beyond rounding noise.
        CHECK(errors[i] <= 2 * math_errors[i] + tol / 4);
      }
    }
  }
}

TEST_CASE("attention: under cuda::set_deterministic the backward repeats bit for bit [cuda]" *
          doctest::skip(!cuda_available())) {
  // On Hopper the default backward adds dQ's partial sums in L2 in whatever order blocks finish
  // (ops/cuda/flash_attention_sm90_backward.cu); deterministic mode computes dQ in its own
  // kernel. dK and dV come from the same products either way.
  const Device cuda = Device::cuda(0);
  const Config c{2, 4, 2, 1000, 900, 64, true};
  manual_seed(21);
  Tensor q = randn({c.batch, c.heads, c.L, c.D}, {kBFloat16, cuda});
  Tensor k = randn({c.batch, c.kv_heads, c.S, c.D}, {kBFloat16, cuda});
  Tensor v = randn({c.batch, c.kv_heads, c.S, c.D}, {kBFloat16, cuda});
  Tensor dout = randn({c.batch, c.heads, c.L, c.D}, {kBFloat16, cuda});
  const bool was = cuda::deterministic();
  cuda::set_deterministic(true);
  const Result first = run(q, k, v, dout, c, nn::AttentionKernel::Fused);
  const Result second = run(q, k, v, dout, c, nn::AttentionKernel::Fused);
  cuda::set_deterministic(false);
  const Result fast = run(q, k, v, dout, c, nn::AttentionKernel::Fused);
  cuda::set_deterministic(was);
  CHECK(relative_error(second.dq, first.dq) == 0);
  CHECK(relative_error(second.dk, first.dk) == 0);
  CHECK(relative_error(second.dv, first.dv) == 0);
  CHECK(relative_error(fast.dk, first.dk) == 0);
  CHECK(relative_error(fast.dv, first.dv) == 0);
  const double dq_gap = relative_error(fast.dq, first.dq);
  std::printf("attention: default dQ against the deterministic one: %.2e of its largest value\n", dq_gap);
  CHECK(dq_gap <= 1.0 / 128);  // a bfloat16 rounding step at most, from float32 sums in another order
}

TEST_CASE("attention: the fused kernel reads strided q, k, v and writes what the math path does [cuda]" *
          doctest::skip(!cuda_available())) {
  const Device cuda = Device::cuda(0);
  manual_seed(3);
  // [B, L, H, D] projections viewed as [B, H, L, D], as MultiheadAttention makes them.
  Tensor qkv = randn({2, 96, 3, 4, 64}, {kBFloat16, cuda});
  Tensor q = transpose(select(qkv, 2, 0), 1, 2), k = transpose(select(qkv, 2, 1), 1, 2),
         v = transpose(select(qkv, 2, 2), 1, 2);
  REQUIRE(!q.is_contiguous());
  Tensor fused, math;
  {
    nn::AttentionKernelGuard g(nn::AttentionKernel::Fused);
    fused = nn::scaled_dot_product_attention(q, k, v, Tensor(), 0, true);
  }
  {
    nn::AttentionKernelGuard g(nn::AttentionKernel::Math);
    math = nn::scaled_dot_product_attention(q.to(kFloat64), k.to(kFloat64), v.to(kFloat64), Tensor(), 0, true);
  }
  CHECK(relative_error(fused, math) <= 2e-2);
  // Auto takes the fused kernel for these inputs: same bits.
  CHECK(relative_error(nn::scaled_dot_product_attention(q, k, v, Tensor(), 0, true), fused) == 0);
}

TEST_CASE("attention: on Hopper the sm_90a forward takes half types with head dim 64 [cuda]" *
          doctest::skip(!cuda_available())) {
  const Device dev = Device::cuda(0);
  Tensor q = randn({1, 2, 100, 64}, {kBFloat16, dev}), wide = randn({1, 2, 100, 128}, {kBFloat16, dev});
  const std::string why = flash_attention_sm90_refusal(q, q, q);
  const cuda::DeviceProperties props = cuda::properties(0);
  const std::string kernel = why.empty() ? "the sm_90a kernel" : "the mma.sync kernel: " + why;
  std::printf("attention: the half-precision forward on %s runs %s\n", props.name.c_str(), kernel.c_str());
  CHECK(flash_attention_sm90_refusal(wide, wide, wide) != "");  // head dim 128 keeps the mma.sync kernel
  const bool built = why.find("no sm_90a code") == std::string::npos;
  const char* off = std::getenv("EMBER_FLASH_SM90");
  if (props.major == 9 && props.minor == 0 && built && !(off && std::string(off) == "0"))
    CHECK(why == "");  // so the fused-kernel cases above tested it
  else if (built && props.major != 9)
    CHECK(why == "the device is not sm_90");
}

TEST_CASE("attention: the float32 inference kernel matches float64 attention [cuda]" *
          doctest::skip(!cuda_available())) {
  const Device cuda = Device::cuda(0);
  const std::vector<Config> configs = {
      {2, 4, 4, 100, 77, 64, false}, {1, 3, 3, 130, 130, 64, true}, {2, 4, 2, 64, 200, 64, false},
      {1, 2, 1, 70, 150, 128, true}, {1, 2, 2, 150, 40, 128, false}, {3, 2, 2, 1, 65, 64, false},
  };
  NoGradGuard no_grad;
  for (const Config& c : configs) {
    // Scores of ±40 (inputs times 3) check that the running maximum keeps exp in range.
    for (double magnitude : {1.0, 3.0}) {
      INFO("B", c.batch, " H", c.heads, "/", c.kv_heads, " L", c.L, " S", c.S, " D", c.D,
           std::string(c.causal ? " causal" : ""), " magnitude ", magnitude);
      manual_seed(13);
      Tensor q = mul(randn({c.batch, c.heads, c.L, c.D}, {kFloat64, cuda}), magnitude);
      Tensor k = mul(randn({c.batch, c.kv_heads, c.S, c.D}, {kFloat64, cuda}), magnitude);
      Tensor v = randn({c.batch, c.kv_heads, c.S, c.D}, {kFloat64, cuda});
      const bool gqa = c.heads != c.kv_heads;
      auto attend = [&](const Tensor& a, const Tensor& b, const Tensor& d, nn::AttentionKernel kernel) {
        nn::AttentionKernelGuard guard(kernel);
        return nn::scaled_dot_product_attention(a, b, d, Tensor(), 0, c.causal, std::nullopt, gqa);
      };
      const Tensor want = attend(q, k, v, nn::AttentionKernel::Math);
      const Tensor qf = q.to(kFloat32), kf = k.to(kFloat32), vf = v.to(kFloat32);
      const Tensor fused = attend(qf, kf, vf, nn::AttentionKernel::Fused);
      const double err = relative_error(fused, want);
      const double math_err = relative_error(attend(qf, kf, vf, nn::AttentionKernel::Math), want);
      std::printf("attention float32 %s D%d magnitude %.0f: fused error %.2e (math path %.2e)\n",
                  c.causal ? "causal" : "full", static_cast<int>(c.D), magnitude, err, math_err);
      CHECK(err <= 2e-6 * magnitude * magnitude);
      CHECK(err <= 4 * math_err + 1e-6);
      // Auto takes it when no gradient is wanted: the same bits.
      CHECK(relative_error(attend(qf, kf, vf, nn::AttentionKernel::Auto), fused) == 0);
    }
  }
}

TEST_CASE("attention: float32 attention trains through the math path, infers through the fused kernel [cuda]" *
          doctest::skip(!cuda_available())) {
  const Device cuda = Device::cuda(0);
  manual_seed(4);
  // Packed projections [B, L, 3, H, D] viewed as [B, H, L, D]: the kernel reads them in place.
  Tensor qkv = randn({2, 96, 3, 4, 64}, {kFloat32, cuda});
  auto part = [&](int i) { return transpose(select(qkv, 2, i), 1, 2); };
  Tensor q = part(0), k = part(1), v = part(2);
  REQUIRE(!q.is_contiguous());
  Tensor want, math, fused;
  {
    nn::AttentionKernelGuard g(nn::AttentionKernel::Math);
    want = nn::scaled_dot_product_attention(q.to(kFloat64), k.to(kFloat64), v.to(kFloat64), Tensor(), 0, true);
    math = nn::scaled_dot_product_attention(q, k, v, Tensor(), 0, true);
  }
  {
    NoGradGuard no_grad;
    fused = nn::scaled_dot_product_attention(q, k, v, Tensor(), 0, true);
  }
  CHECK(relative_error(fused, want) <= 2e-6);
  CHECK(relative_error(fused, math) > 0);  // a different kernel: the sums run in another order
  // With a gradient wanted, Auto runs the math path (same bits as Math) and the gradient flows.
  Tensor qg = q.detach().requires_grad_();
  Tensor out = nn::scaled_dot_product_attention(qg, k, v, Tensor(), 0, true);
  CHECK(relative_error(out, math) == 0);
  TensorList g = grad({sum(out)}, {qg});
  CHECK(g[0].sizes() == q.sizes());
}

TEST_CASE("attention: double backward through the fused kernel [cuda]" * doctest::skip(!cuda_available())) {
  const Device cuda = Device::cuda(0);
  manual_seed(5);
  const Config c{1, 2, 2, 40, 40, 64, true};
  auto second_order = [&](DType dt, nn::AttentionKernel kernel) {
    nn::AttentionKernelGuard guard(kernel);
    manual_seed(6);
    Tensor q = randn({1, 2, c.L, c.D}, {kFloat64, cuda}).to(dt).requires_grad_();
    Tensor k = randn({1, 2, c.S, c.D}, {kFloat64, cuda}).to(dt).requires_grad_();
    Tensor v = randn({1, 2, c.S, c.D}, {kFloat64, cuda}).to(dt).requires_grad_();
    Tensor out = nn::scaled_dot_product_attention(q, k, v, Tensor(), 0, true);
    TensorList g = grad({sum(mul(out, out))}, {q, k, v}, {}, std::nullopt, true);
    // d/dq of Σ dk² exercises the create_graph form of the backward.
    return grad({sum(mul(g[1], g[1]).to(kFloat64))}, {q})[0];
  };
  const Tensor fused = second_order(kBFloat16, nn::AttentionKernel::Fused);
  const Tensor want = second_order(kFloat64, nn::AttentionKernel::Math);
  const double err = relative_error(fused, want);
  std::printf("attention double backward, bfloat16 fused vs float64: %.2e\n", err);
  CHECK(err <= 5e-2);
}

DEVICE_TEST("attention: asking for the fused kernel where it does not apply is an error naming why") {
  Tensor q = randn({1, 2, 8, 64}, {kFloat32, device});
  nn::AttentionKernelGuard guard(nn::AttentionKernel::Fused);
  if (device.is_cuda()) {
    Tensor d = q.to(kFloat64);
    check_error([&] { nn::scaled_dot_product_attention(d, d, d); }, ErrorCode::Unsupported,
                "takes float16, bfloat16 and (for inference) float32, got float64");
    Tensor trained = q.detach().requires_grad_();
    check_error([&] { nn::scaled_dot_product_attention(trained, trained, trained); }, ErrorCode::Unsupported,
                "float32 fused kernel is for inference");
    Tensor h = randn({1, 2, 8, 48}, {kBFloat16, device});
    check_error([&] { nn::scaled_dot_product_attention(h, h, h); }, ErrorCode::Unsupported, "head dims 64 and 128");
    Tensor b = q.to(kBFloat16);
    check_error([&] { nn::scaled_dot_product_attention(b, b, b, ones({8, 8}, {kBool, device})); },
                ErrorCode::Unsupported, "no attention mask other than is_causal");
  } else {
    check_error([&] { nn::scaled_dot_product_attention(q, q, q); }, ErrorCode::Unsupported, "CUDA devices only");
  }
  // The math path is always there.
  nn::AttentionKernelGuard math(nn::AttentionKernel::Math);
  CHECK(nn::scaled_dot_product_attention(q, q, q).sizes() == Shape{1, 2, 8, 64});
}
