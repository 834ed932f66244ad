// Transformer pieces against float64 references written here: layer_norm, rms_norm and
// scaled_dot_product_attention (causal, boolean and additive masks, scale, grouped-query
// heads, dropout), MultiheadAttention (PyTorch's masks and layouts), TransformerEncoderLayer
// and the GPT decoder; gradchecks on every device.
#include <cmath>
#include <set>

#include "tests/harness.h"

using namespace ember;
using namespace ember::test;

namespace {

// Normalises each contiguous block of `block` values: layer norm (centred) or RMS norm.
Ref norm_ref(const Ref& x, int64_t block, const Ref* w, const Ref* b, double eps, bool centre) {
  Ref out = x;
  for (int64_t start = 0; start < x.numel(); start += block) {
    double mean = 0, sq = 0;
    for (int64_t i = 0; i < block; ++i) mean += x.v[start + i] / block;
    if (!centre) mean = 0;
    for (int64_t i = 0; i < block; ++i) sq += (x.v[start + i] - mean) * (x.v[start + i] - mean) / block;
    for (int64_t i = 0; i < block; ++i) {
      double y = (x.v[start + i] - mean) / std::sqrt(sq + eps);
      if (w) y *= w->v[i];
      if (b) y += b->v[i];
      out.v[start + i] = y;
    }
  }
  return out;
}

// Attention in float64: q [B, H, L, E], k [B, Hk, S, E], v [B, Hk, S, Ev]; query head h reads
// key head h / (H / Hk). mask(l, s): nullopt = may not attend, else the value added.
Ref attention_ref(const Ref& q, const Ref& k, const Ref& v, double scale,
                  const std::function<std::optional<double>(int64_t, int64_t, int64_t, int64_t)>& mask) {
  const int64_t B = q.shape[0], H = q.shape[1], L = q.shape[2], E = q.shape[3];
  const int64_t Hk = k.shape[1], S = k.shape[2], Ev = v.shape[3];
  Ref out{{B, H, L, Ev}, std::vector<double>(static_cast<size_t>(B * H * L * Ev))};
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h) {
      const int64_t hk = h / (H / Hk);
      for (int64_t l = 0; l < L; ++l) {
        std::vector<double> score(static_cast<size_t>(S), -INFINITY);
        double top = -INFINITY;
        for (int64_t s = 0; s < S; ++s) {
          auto m = mask(b, h, l, s);
          if (!m) continue;
          double dot = 0;
          for (int64_t e = 0; e < E; ++e) dot += q.at({b, h, l, e}) * k.at({b, hk, s, e});
          score[s] = dot * scale + *m;
          top = std::max(top, score[s]);
        }
        double total = 0;
        for (double& sc : score) total += (sc = std::exp(sc - top));
        for (int64_t e = 0; e < Ev; ++e) {
          double acc = 0;
          for (int64_t s = 0; s < S; ++s) acc += score[s] / total * v.at({b, hk, s, e});
          out.v[static_cast<size_t>(((b * H + h) * L + l) * Ev + e)] = acc;
        }
      }
    }
  return out;
}

// y = x Wᵀ + b over the last dim, in float64.
Ref linear_ref(const Ref& x, const Ref& w, const Ref& b) {
  const int64_t in = w.shape[1], outf = w.shape[0], rows = x.numel() / in;
  Shape shape = x.shape;
  shape.back() = outf;
  Ref out{shape, std::vector<double>(static_cast<size_t>(rows * outf))};
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < outf; ++o) {
      double acc = b.v[static_cast<size_t>(o)];
      for (int64_t i = 0; i < in; ++i) acc += x.v[static_cast<size_t>(r * in + i)] * w.v[static_cast<size_t>(o * in + i)];
      out.v[static_cast<size_t>(r * outf + o)] = acc;
    }
  return out;
}

bool equal(const Tensor& a, const Tensor& b) {
  return a.sizes() == b.sizes() && all(eq(a, b)).item<bool>();
}

bool allclose(const Tensor& a, const Tensor& b) {
  return a.sizes() == b.sizes() && max(abs(sub(a, b))).item<double>() <= 1e-5;
}

}  // namespace

DEVICE_TEST("transformer: layer_norm and rms_norm match float64 references, every float dtype; gradcheck") {
  Ref x = random_ref({2, 3, 8}, -2, 3, 1), w = random_ref({8}, 0.5, 1.5, 2), b = random_ref({8}, -1, 1, 3);
  Ref w2 = random_ref({3, 8}, 0.5, 1.5, 4);
  for (DType dt : kFloatTypes) {
    INFO(dt);
    Ref xr = round_to(x, dt), wr = round_to(w, dt), br = round_to(b, dt), w2r = round_to(w2, dt);
    Tensor xt = from_ref(xr, dt, device);
    check_close(nn::layer_norm(xt, {8}, from_ref(wr, dt, device), from_ref(br, dt, device)),
                norm_ref(xr, 8, &wr, &br, 1e-5, true), dt);
    check_close(nn::layer_norm(xt, {3, 8}, from_ref(w2r, dt, device), Tensor(), 1e-3),
                norm_ref(xr, 24, &w2r, nullptr, 1e-3, true), dt);
    const double eps = dt == kFloat64 ? 2.220446049250313e-16 : dt == kFloat32 ? 1.1920928955078125e-7
                       : dt == kFloat16 ? 9.765625e-4 : 7.8125e-3;
    check_close(nn::rms_norm(xt, {8}, from_ref(wr, dt, device)), norm_ref(xr, 8, &wr, nullptr, eps, false), dt);
    check_close(nn::rms_norm(xt, {8}, Tensor(), 0.5), norm_ref(xr, 8, nullptr, nullptr, 0.5, false), dt);
  }
  check_gradcheck("layer_norm", [](const TensorList& in) { return TensorList{nn::layer_norm(in[0], {4}, in[1], in[2])}; },
                   {random_leaf({3, 4}, device, 5), random_leaf({4}, device, 6), random_leaf({4}, device, 7)});
  check_gradcheck("layer_norm over two dims",
                   [](const TensorList& in) { return TensorList{nn::layer_norm(in[0], {2, 3}, in[1])}; },
                   {random_leaf({2, 2, 3}, device, 8), random_leaf({2, 3}, device, 9)});
  check_gradcheck("rms_norm", [](const TensorList& in) { return TensorList{nn::rms_norm(in[0], {4}, in[1], 1e-6)}; },
                   {random_leaf({3, 4}, device, 10), random_leaf({4}, device, 11)});
  check_gradgradcheck("layer_norm", [](const TensorList& in) { return TensorList{nn::layer_norm(in[0], {4}, in[1], in[2])}; },
                      {random_leaf({3, 4}, device, 15), random_leaf({4}, device, 16), random_leaf({4}, device, 17)});
  check_gradgradcheck("rms_norm", [](const TensorList& in) { return TensorList{nn::rms_norm(in[0], {4}, in[1], 1e-6)}; },
                      {random_leaf({3, 4}, device, 18), random_leaf({4}, device, 19)});
  // Long rows (a block per row on CUDA): outputs and every gradient in each dtype against the
  // float64 op (gradchecked above) on the same rounded inputs.
  const Ref big = random_ref({3, 1500}, -2, 3, 12), bw = random_ref({1500}, 0.5, 1.5, 13),
            bb = random_ref({1500}, -1, 1, 14), bg = random_ref({3, 1500}, -1, 1, 15);
  for (bool rms : {false, true})
    for (DType dt : kFloatTypes) {
      INFO(std::string(rms ? "rms_norm " : "layer_norm "), dt, " rows of 1500");
      auto run = [&](DType t, Device d) {
        TensorList in = {from_ref(round_to(big, dt), t, d).requires_grad_(), from_ref(round_to(bw, dt), t, d).requires_grad_(),
                         from_ref(round_to(bb, dt), t, d).requires_grad_()};
        Tensor y = rms ? nn::rms_norm(in[0], {1500}, in[1], 1e-5) : nn::layer_norm(in[0], {1500}, in[1], in[2]);
        backward({y}, {from_ref(round_to(bg, dt), t, d)});
        return TensorList{y, in[0].grad(), in[1].grad(), rms ? Tensor() : in[2].grad()};
      };
      const TensorList got = run(dt, device), want = run(kFloat64, Device::cpu());
      for (size_t i = 0; i < got.size(); ++i) {
        if (!want[i].defined()) continue;
        INFO("result ", i, " (y, dx, dweight, dbias)");
        check_close(got[i], to_ref(want[i]), dt, i == 0 ? 1 : 4);
      }
    }
  check_error([&] { nn::layer_norm(from_ref(x, kFloat32, device), {3}); }, ErrorCode::ShapeMismatch,
              "does not match the trailing dims of [2, 3, 8]");
  check_error([&] { nn::layer_norm(from_ref(x, kFloat32, device), {8}, zeros({4}, {kFloat32, device})); },
              ErrorCode::ShapeMismatch, "expected weight of shape [8], got [4]");
}

DEVICE_TEST("transformer: add_layer_norm gives layer_norm(x + r) and x + r against float64, every float dtype") {
  // Rows of 8 (a warp per row on CUDA) and of 1500 (a block per row).
  for (int64_t m : {8, 1500}) {
    const Ref x = random_ref({2, 3, m}, -2, 3, 31), r = random_ref({2, 3, m}, -3, 2, 32),
              w = random_ref({m}, 0.5, 1.5, 33), b = random_ref({m}, -1, 1, 34);
    for (DType dt : kFloatTypes) {
      INFO(dt, ", rows of ", m);
      const Ref xr = round_to(x, dt), rr = round_to(r, dt), wr = round_to(w, dt), br = round_to(b, dt);
      Ref sum = xr;
      for (size_t i = 0; i < sum.v.size(); ++i) sum.v[i] += rr.v[i];
      const Ref sum_rounded = round_to(sum, dt);  // the op normalises the sum as stored
      auto [y, s] = nn::add_layer_norm(from_ref(xr, dt, device), from_ref(rr, dt, device), {m},
                                       from_ref(wr, dt, device), from_ref(br, dt, device));
      CHECK(y.dtype() == dt);
      CHECK(s.sizes() == Shape{2, 3, m});
      check_close(s, sum, dt);
      check_close(y, norm_ref(sum_rounded, m, &wr, &br, 1e-5, true), dt);
      auto [y2, s2] = nn::add_layer_norm(from_ref(xr, dt, device), from_ref(rr, dt, device), {3, m}, Tensor(), Tensor(), 1e-3);
      check_close(y2, norm_ref(sum_rounded, 3 * m, nullptr, nullptr, 1e-3, true), dt);
      // The same values as the add and the norm run apart (the graph pass's promise).
      const Tensor apart = add(from_ref(xr, dt, device), from_ref(rr, dt, device));
      CHECK(equal(s, apart));
      check_close(y, to_ref(nn::layer_norm(apart, {m}, from_ref(wr, dt, device), from_ref(br, dt, device))), dt);
    }
  }
  // Where autograd records, gradients flow as through add and layer_norm.
  check_gradcheck("add_layer_norm",
                  [](const TensorList& in) {
                    auto [y, s] = nn::add_layer_norm(in[0], in[1], {4}, in[2], in[3]);
                    return TensorList{y, s};
                  },
                  {random_leaf({3, 4}, device, 35), random_leaf({3, 4}, device, 36), random_leaf({4}, device, 37),
                   random_leaf({4}, device, 38)});
  const Tensor a = zeros({2, 4}, {kFloat32, device});
  check_error([&] { nn::add_layer_norm(a, zeros({4}, {kFloat32, device}), {4}); }, ErrorCode::ShapeMismatch,
              "must have one shape");
  check_error([&] { nn::add_layer_norm(a, zeros({2, 4}, {kFloat64, device}), {4}); }, ErrorCode::DTypeMismatch,
              "but residual float64");
  check_error([&] { nn::add_layer_norm(a, a, {3}); }, ErrorCode::ShapeMismatch, "does not match the trailing dims");
}

DEVICE_TEST("transformer: scaled_dot_product_attention matches a float64 reference (masks, causal, scale, GQA)") {
  const int64_t B = 2, H = 4, L = 3, S = 5, E = 6, Ev = 7;
  Ref q = random_ref({B, H, L, E}, -1, 1, 20), k = random_ref({B, H, S, E}, -1, 1, 21),
      v = random_ref({B, H, S, Ev}, -1, 1, 22);
  Ref allowed = random_int_ref({L, S}, 0, 1, 23), added = random_ref({L, S}, -2, 2, 24);
  for (int64_t s = 0; s < S; ++s) allowed.v[static_cast<size_t>(s)] = s == 0 ? 1 : allowed.v[static_cast<size_t>(s)];
  for (int64_t l = 0; l < L; ++l) allowed.v[static_cast<size_t>(l * S)] = 1;  // every row sees a key
  const double scale = 1 / std::sqrt(static_cast<double>(E));
  auto none = [](int64_t, int64_t, int64_t, int64_t) -> std::optional<double> { return 0.0; };
  // bfloat16: q·kᵀ and the weighted sum of v are rounded to 8 bits, so outputs near zero carry
  // absolute errors of about 1% of the output's scale; compare against that scale there.
  auto check_attention = [&](const Tensor& got, const Ref& want, DType dt) {
    if (dt != kBFloat16) return check_close(got, want, dt);
    double scale_of = 0, worst = 0;
    Ref g = to_ref(got);
    for (size_t i = 0; i < want.v.size(); ++i) {
      scale_of = std::max(scale_of, std::abs(want.v[i]));
      worst = std::max(worst, std::abs(g.v[i] - want.v[i]));
    }
    CHECK(worst <= 0.02 * scale_of);
  };
  for (DType dt : {kFloat32, kFloat64, kBFloat16}) {
    INFO(dt);
    Ref qr = round_to(q, dt), kr = round_to(k, dt), vr = round_to(v, dt);
    Tensor qt = from_ref(qr, dt, device), kt = from_ref(kr, dt, device), vt = from_ref(vr, dt, device);
    check_attention(nn::scaled_dot_product_attention(qt, kt, vt), attention_ref(qr, kr, vr, scale, none), dt);
    check_attention(nn::scaled_dot_product_attention(qt, kt, vt, Tensor(), 0, true),
                attention_ref(qr, kr, vr, scale,
                              [](int64_t, int64_t, int64_t l, int64_t s) -> std::optional<double> {
                                if (s > l) return std::nullopt;
                                return 0.0;
                              }),
                dt);
    check_attention(nn::scaled_dot_product_attention(qt, kt, vt, from_ref(allowed, kBool, device)),
                attention_ref(qr, kr, vr, scale,
                              [&](int64_t, int64_t, int64_t l, int64_t s) -> std::optional<double> {
                                if (allowed.at({l, s}) == 0) return std::nullopt;
                                return 0.0;
                              }),
                dt);
    Ref addr = round_to(added, dt);
    check_attention(nn::scaled_dot_product_attention(qt, kt, vt, from_ref(addr, dt, device), 0, false, 0.3),
                attention_ref(qr, kr, vr, 0.3,
                              [&](int64_t, int64_t, int64_t l, int64_t s) -> std::optional<double> {
                                return addr.at({l, s});
                              }),
                dt);
    // Grouped-query attention: 4 query heads over 2 key/value heads.
    Ref k2 = round_to(random_ref({B, 2, S, E}, -1, 1, 25), dt), v2 = round_to(random_ref({B, 2, S, Ev}, -1, 1, 26), dt);
    check_attention(nn::scaled_dot_product_attention(qt, from_ref(k2, dt, device), from_ref(v2, dt, device), Tensor(), 0,
                                                 false, std::nullopt, true),
                attention_ref(qr, k2, v2, scale, none), dt);
  }
  check_gradcheck("sdpa, causal",
                   [](const TensorList& in) {
                     return TensorList{nn::scaled_dot_product_attention(in[0], in[1], in[2], Tensor(), 0, true)};
                   },
                   {random_leaf({1, 2, 3, 4}, device, 30), random_leaf({1, 2, 3, 4}, device, 31), random_leaf({1, 2, 3, 5}, device, 32)});
  check_gradcheck("sdpa, additive mask, grouped heads",
                   [&](const TensorList& in) {
                     return TensorList{nn::scaled_dot_product_attention(in[0], in[1], in[2], in[3], 0, false,
                                                                        std::nullopt, true)};
                   },
                   {random_leaf({1, 4, 2, 3}, device, 33), random_leaf({1, 2, 4, 3}, device, 34), random_leaf({1, 2, 4, 3}, device, 35),
                    random_leaf({2, 4}, device, 36)});
  // Dropout on the weights: reproducible from the seed, and it changes the result.
  Tensor qt = from_ref(q, kFloat32, device), kt = from_ref(k, kFloat32, device), vt = from_ref(v, kFloat32, device);
  manual_seed(7);
  Tensor d1 = nn::scaled_dot_product_attention(qt, kt, vt, Tensor(), 0.5);
  manual_seed(7);
  Tensor d2 = nn::scaled_dot_product_attention(qt, kt, vt, Tensor(), 0.5);
  CHECK(equal(d1, d2));
  CHECK(!allclose(d1, nn::scaled_dot_product_attention(qt, kt, vt)));
  // A query that may attend to nothing gets NaN, as PyTorch's math path.
  Tensor nothing = zeros({L, S}, {kBool, device});
  CHECK(all(isnan(nn::scaled_dot_product_attention(qt, kt, vt, nothing))).item<bool>());
  check_error([&] { nn::scaled_dot_product_attention(qt, kt, vt, nothing, 0, true); }, ErrorCode::InvalidArgument,
              "is_causal and attn_mask cannot both be given");
  check_error([&] { nn::scaled_dot_product_attention(qt, kt, qt); }, ErrorCode::ShapeMismatch, "as many positions");
}

DEVICE_TEST("transformer: MultiheadAttention has PyTorch's parameters, masks and layouts") {
  const int64_t B = 2, L = 4, E = 6, H = 2;
  manual_seed(3);
  nn::MultiheadAttention mha(E, H, 0.0, true, /*batch_first=*/true);
  mha.to(device);
  mha.to(kFloat64);
  std::set<std::string> names;
  for (const auto& [name, t] : mha.named_parameters()) names.insert(name);
  CHECK(names == std::set<std::string>{"in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"});
  auto state = mha.state_dict();
  CHECK(max(abs(state["out_proj.bias"])).item<double>() == 0);

  // Against float64 loops: project, split heads, attend, merge, project.
  Ref x = random_ref({B, L, E}, -1, 1, 40);
  Tensor xt = from_ref(x, kFloat64, device);
  Ref w = to_ref(state["in_proj_weight"]), b = to_ref(state["in_proj_bias"]);
  auto part = [&](const Ref& r, int64_t i, int64_t rows) {
    const int64_t per = r.numel() / 3;
    Ref p{rows > 0 ? Shape{E, E} : Shape{E}, std::vector<double>(r.v.begin() + i * per, r.v.begin() + (i + 1) * per)};
    return p;
  };
  auto heads = [&](const Ref& r) {  // [B, L, E] -> [B, H, L, E/H]
    Ref out{{B, H, L, E / H}, std::vector<double>(r.v.size())};
    for (int64_t bb = 0; bb < B; ++bb)
      for (int64_t l = 0; l < L; ++l)
        for (int64_t e = 0; e < E; ++e)
          out.v[static_cast<size_t>(((bb * H + e / (E / H)) * L + l) * (E / H) + e % (E / H))] =
              r.v[static_cast<size_t>((bb * L + l) * E + e)];
    return out;
  };
  Ref q = heads(linear_ref(x, part(w, 0, E), part(b, 0, 0))), k = heads(linear_ref(x, part(w, 1, E), part(b, 1, 0))),
      v = heads(linear_ref(x, part(w, 2, E), part(b, 2, 0)));
  Ref att = attention_ref(q, k, v, 1 / std::sqrt(E / static_cast<double>(H)),
                          [](int64_t, int64_t, int64_t l, int64_t s) -> std::optional<double> {
                            if (s > l) return std::nullopt;
                            return 0.0;
                          });
  Ref merged{{B, L, E}, std::vector<double>(att.v.size())};
  for (int64_t bb = 0; bb < B; ++bb)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t l = 0; l < L; ++l)
        for (int64_t e = 0; e < E / H; ++e)
          merged.v[static_cast<size_t>((bb * L + l) * E + h * (E / H) + e)] =
              att.v[static_cast<size_t>(((bb * H + h) * L + l) * (E / H) + e)];
  Ref expected = linear_ref(merged, to_ref(state["out_proj.weight"]), to_ref(state["out_proj.bias"]));
  check_close(mha.forward(xt, xt, xt, Tensor(), Tensor(), true), expected, kFloat64);
  // PyTorch's bool attn_mask marks what may NOT be attended: triu(1) is the causal mask.
  Tensor future = triu(ones({L, L}, {kBool, device}), 1);
  check_close(mha.forward(xt, xt, xt, Tensor(), future), expected, kFloat64);

  // A padded key is ignored: the same as attending to the other keys only.
  Tensor pad = cat({zeros({B, L - 1}, {kBool, device}), ones({B, 1}, {kBool, device})}, 1);
  Tensor shorter = xt.slice(1, 0, L - 1);
  check_close(mha.forward(xt, xt, xt, pad), to_ref(mha.forward(xt, shorter, shorter)), kFloat64);

  // Sequence-first layout: the same module on transposed inputs gives transposed outputs.
  nn::MultiheadAttention seq_first(E, H, 0.0, true, false);
  seq_first.to(device);
  seq_first.to(kFloat64);
  seq_first.load_state_dict(state);
  Tensor xs = transpose(xt, 0, 1).contiguous();
  check_close(transpose(seq_first.forward(xs, xs, xs), 0, 1), to_ref(mha.forward(xt, xt, xt)), kFloat64);

  check_gradcheck("MultiheadAttention (input and in_proj_weight)",
                   [&](const TensorList& in) { return TensorList{mha.forward(in[0], in[0], in[0], Tensor(), Tensor(), true)}; },
                   {random_leaf({1, 3, E}, device, 41)});
  check_error([&] { mha.forward(xt, xt, xt, zeros({B, L + 1}, {kBool, device})); }, ErrorCode::ShapeMismatch,
              "key_padding_mask must be [2, 4]");
}

DEVICE_TEST("transformer: TransformerEncoderLayer names, pre- and post-norm, causality; gradcheck") {
  const int64_t E = 8, H = 2;
  nn::TransformerLayerOptions o;
  o.dim_feedforward = 16;
  o.batch_first = true;
  o.dropout = 0.1;
  nn::TransformerEncoderLayer post(E, H, o);
  std::set<std::string> names;
  for (const auto& [name, t] : post.state_dict()) names.insert(name);
  CHECK(names == std::set<std::string>{"self_attn.in_proj_weight", "self_attn.in_proj_bias", "self_attn.out_proj.weight",
                                       "self_attn.out_proj.bias", "linear1.weight", "linear1.bias", "linear2.weight",
                                       "linear2.bias", "norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias"});
  post.to(device);
  post.to(kFloat64);
  post.eval();
  o.norm_first = true;
  nn::TransformerEncoderLayer pre(E, H, o);
  pre.to(device);
  pre.to(kFloat64);
  pre.load_state_dict(post.state_dict());
  pre.eval();
  Tensor x = from_ref(random_ref({2, 5, E}, -1, 1, 50), kFloat64, device);
  // Post-norm ends in a LayerNorm (zero mean per position); pre-norm does not.
  CHECK(max(abs(mean(post.forward(x), {-1}))).item<double>() < 1e-12);
  CHECK(max(abs(mean(pre.forward(x), {-1}))).item<double>() > 1e-3);
  // Causal: changing the last position leaves the others' outputs unchanged.
  Tensor y = pre.forward(x, Tensor(), Tensor(), true);
  Tensor x2 = x.clone();
  fill_(x2.select(1, 4), 3.0);
  Tensor y2 = pre.forward(x2, Tensor(), Tensor(), true);
  CHECK(equal(y.slice(1, 0, 4), y2.slice(1, 0, 4)));
  CHECK(!equal(y.select(1, 4), y2.select(1, 4)));
  check_gradcheck("TransformerEncoderLayer (pre-norm, causal)",
                   [&](const TensorList& in) { return TensorList{pre.forward(in[0], Tensor(), Tensor(), true)}; },
                   {random_leaf({1, 3, E}, device, 51)});
  check_gradcheck("TransformerEncoderLayer (post-norm, padding mask)",
                   [&](const TensorList& in) {
                     return TensorList{post.forward(in[0], Tensor(),
                                                    cat({zeros({1, 2}, {kBool, device}), ones({1, 1}, {kBool, device})}, 1),
                                                    false)};
                   },
                   {random_leaf({1, 3, E}, device, 52)});
}

DEVICE_TEST("transformer: a small GPT is causal and learns a repeating sequence") {
  nn::GPTConfig c;
  c.vocab_size = 11;
  c.block_size = 16;
  c.layers = 2;
  c.heads = 2;
  c.width = 16;
  c.dropout = 0;
  manual_seed(0);
  nn::GPT gpt(c);
  gpt.to(device);
  std::set<std::string> names;
  for (const auto& [name, t] : gpt.named_parameters()) names.insert(name);
  CHECK(names.count("wte.weight"));
  CHECK(names.count("wpe.weight"));
  CHECK(names.count("h.1.self_attn.in_proj_weight"));
  CHECK(names.count("ln_f.bias"));
  CHECK(names.size() == 4 + 2 * 12);  // no separate head: it is wte
  Tensor tokens = remainder(arange(2 * 12, {kInt64, device}), 11).view({2, 12});
  Tensor logits = gpt.forward(tokens);
  CHECK(logits.sizes() == Shape{2, 12, 11});
  Tensor changed = tokens.clone();
  fill_(changed.select(1, 11), 0);
  CHECK(equal(logits.slice(1, 0, 11), gpt.forward(changed).slice(1, 0, 11)));
  // Next-token prediction on 0, 1, 2, ..., 10, 0, 1, ...: the loss must fall well below ln 11.
  nn::Adam opt(gpt.parameters(), {.lr = 1e-2});
  Tensor inputs = tokens.slice(1, 0, 11), targets = tokens.slice(1, 1, 12).reshape({-1});
  double first = 0, last = 0;
  for (int step = 0; step < 40; ++step) {
    gpt.zero_grad();
    Tensor loss = nn::cross_entropy(gpt.forward(inputs).reshape({-1, 11}), targets);
    loss.backward();
    opt.step();
    (step == 0 ? first : last) = loss.item<double>();
  }
  INFO("loss ", first, " -> ", last);
  CHECK(first > 2.0);
  CHECK(last < 0.1);
  check_error([&] { gpt.forward(zeros({1, 17}, {kInt64, device})); }, ErrorCode::InvalidArgument,
              "longer than block_size 16");
}

DEVICE_TEST("transformer: TransformerDecoderLayer names, causal self-attention, memory padding; gradcheck") {
  const int64_t E = 8, H = 2;
  nn::TransformerLayerOptions o;
  o.dim_feedforward = 16;
  o.batch_first = true;
  nn::TransformerDecoderLayer post(E, H, o);
  std::set<std::string> names;
  for (const auto& [name, t] : post.state_dict()) names.insert(name);
  std::set<std::string> want;
  for (const char* attn : {"self_attn", "multihead_attn"})
    for (const char* p : {"in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"})
      want.insert(std::string(attn) + "." + p);
  for (const char* p : {"linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias", "norm1.weight", "norm1.bias",
                        "norm2.weight", "norm2.bias", "norm3.weight", "norm3.bias"})
    want.insert(p);
  CHECK(names == want);
  post.to(device);
  post.to(kFloat64);
  post.eval();
  o.norm_first = true;
  nn::TransformerDecoderLayer pre(E, H, o);
  pre.to(device);
  pre.to(kFloat64);
  pre.load_state_dict(post.state_dict());
  pre.eval();
  Tensor tgt = from_ref(random_ref({2, 5, E}, -1, 1, 60), kFloat64, device);
  Tensor memory = from_ref(random_ref({2, 7, E}, -1, 1, 61), kFloat64, device);
  // Post-norm ends in a LayerNorm; pre-norm does not.
  CHECK(max(abs(mean(post.forward(tgt, memory), {-1}))).item<double>() < 1e-12);
  CHECK(max(abs(mean(pre.forward(tgt, memory), {-1}))).item<double>() > 1e-3);
  // Causal self-attention: a later target position does not change earlier outputs.
  Tensor y = pre.forward(tgt, memory, Tensor(), Tensor(), Tensor(), Tensor(), true);
  Tensor tgt2 = tgt.clone();
  fill_(tgt2.select(1, 4), 2.0);
  Tensor y2 = pre.forward(tgt2, memory, Tensor(), Tensor(), Tensor(), Tensor(), true);
  CHECK(equal(y.slice(1, 0, 4), y2.slice(1, 0, 4)));
  // A padded memory position is ignored: changing it changes nothing.
  Tensor pad = cat({zeros({2, 6}, {kBool, device}), ones({2, 1}, {kBool, device})}, 1);
  Tensor memory2 = memory.clone();
  fill_(memory2.select(1, 6), 5.0);
  CHECK(allclose(post.forward(tgt, memory, Tensor(), Tensor(), Tensor(), pad),
                 post.forward(tgt, memory2, Tensor(), Tensor(), Tensor(), pad)));
  CHECK(!allclose(post.forward(tgt, memory), post.forward(tgt, memory2)));
  check_gradcheck("TransformerDecoderLayer (pre-norm, causal; target and memory)",
                   [&](const TensorList& in) {
                     return TensorList{pre.forward(in[0], in[1], Tensor(), Tensor(), Tensor(), Tensor(), true)};
                   },
                   {random_leaf({1, 3, E}, device, 62), random_leaf({1, 4, E}, device, 63)});
  check_error([&] { post.forward(tgt); }, ErrorCode::InvalidArgument, "needs the encoder's output");
}
