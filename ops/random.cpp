#include "ops/random.h"

#include <cmath>

#include "ops/register.h"
#include "runtime/cuda/cuda.h"
#include "runtime/error.h"
#include "runtime/philox.h"

namespace ember {

const char* RandomOp::name() const {
  switch (kind) {
    case RandomKind::Uniform: return "rand";
    case RandomKind::Normal: return "randn";
    case RandomKind::Randint: return "randint";
    case RandomKind::Bernoulli: return "bernoulli";
    case RandomKind::Randperm: return "randperm";
  }
  return "random";
}

namespace {

// Blocks one draw of n elements of `kind` and `dtype` consumes (see cpu/random.cpp).
uint64_t blocks_for(RandomKind kind, DType dtype, int64_t n) {
  uint64_t u = static_cast<uint64_t>(n);
  switch (kind) {
    case RandomKind::Uniform:
    case RandomKind::Normal:
      return dtype == kFloat64 ? philox::blocks_for_word64(u) : philox::blocks_for_word32(u);
    case RandomKind::Randint:
    case RandomKind::Randperm:
      return philox::blocks_for_word64(u);
    case RandomKind::Bernoulli:
      return philox::blocks_for_word32(u);
  }
  return 0;
}

Tensor draw(std::shared_ptr<RandomOp> op, TensorList inputs, const Shape& shape, DType dtype, Device device,
            Generator* gen) {
  int64_t n = checked_numel(shape, op->name());
  // A captured graph would replay the numbers drawn while capturing, every time.
  EMBER_CHECK(!device.is_cuda() || !cuda::is_capturing(device.index), Unsupported, "[", op->name(),
              "] random numbers cannot be drawn while capturing a CUDA graph: each replay would repeat them "
              "(run this step eagerly)");
  Generator& g = gen ? *gen : default_generator(device);
  auto [seed, offset] = g.reserve(blocks_for(op->kind, dtype, n));
  op->seed = seed;
  op->offset = offset;
  return apply1(op, std::move(inputs), {shape, dtype}, device);
}

DType floating_dtype(const TensorOptions& o, const char* op) {
  DType d = o.dtype.value_or(kFloat32);
  EMBER_CHECK(is_floating(d), Unsupported, "[", op, "] expected a floating dtype, got ", d);
  return d;
}

}  // namespace

Tensor rand(const Shape& shape, TensorOptions options, Generator* gen) {
  DType d = floating_dtype(options, "rand");
  return draw(std::make_shared<RandomOp>(RandomKind::Uniform), {}, shape, d, options.device, gen);
}

Tensor randn(const Shape& shape, TensorOptions options, Generator* gen) {
  DType d = floating_dtype(options, "randn");
  return draw(std::make_shared<RandomOp>(RandomKind::Normal), {}, shape, d, options.device, gen);
}

Tensor randint(int64_t low, int64_t high, const Shape& shape, TensorOptions options, Generator* gen) {
  EMBER_CHECK(low < high, InvalidArgument, "[randint] expected low < high, got low ", low, " and high ", high);
  DType d = options.dtype.value_or(kInt64);
  EMBER_CHECK(d != kBool, Unsupported, "[randint] not supported for dtype bool");
  auto op = std::make_shared<RandomOp>(RandomKind::Randint);
  op->low = low;
  op->high = high;
  return draw(op, {}, shape, d, options.device, gen);
}

Tensor randperm(int64_t n, TensorOptions options, Generator* gen) {
  EMBER_CHECK(n >= 0, InvalidArgument, "[randperm] n must be non-negative, got ", n);
  DType d = options.dtype.value_or(kInt64);
  EMBER_CHECK(is_floating(d) || d == kInt64 || d == kInt32, Unsupported, "[randperm] not supported for dtype ", d);
  return draw(std::make_shared<RandomOp>(RandomKind::Randperm), {}, {n}, d, options.device, gen);
}

Tensor bernoulli(const Tensor& probs, Generator* gen) {
  EMBER_CHECK(is_floating(probs.dtype()), Unsupported, "[bernoulli] expected floating probabilities, got ",
              probs.dtype());
  return draw(std::make_shared<RandomOp>(RandomKind::Bernoulli), {probs.contiguous()}, probs.sizes(),
              probs.dtype(), probs.device(), gen);
}

Tensor bernoulli(const Tensor& t, double p, Generator* gen) {
  EMBER_CHECK(p >= 0 && p <= 1, InvalidArgument, "[bernoulli] expected 0 <= p <= 1, got ", p);
  auto op = std::make_shared<RandomOp>(RandomKind::Bernoulli);
  op->p = p;
  return draw(op, {}, t.sizes(), t.dtype(), t.device(), gen);
}

Tensor rand_like(const Tensor& t, Generator* gen) { return rand(t.sizes(), {t.dtype(), t.device()}, gen); }
Tensor randn_like(const Tensor& t, Generator* gen) { return randn(t.sizes(), {t.dtype(), t.device()}, gen); }

void register_random_ops(OpRegistry& r) {
  OpSupport s{.cuda_kernel = true};
  r.add("random", "rand", kFloatingSet, s);
  r.add("random", "randn", kFloatingSet, s);
  r.add("random", "randint", kNumericSet, s);
  r.add("random", "randperm", kFloatingSet | dtype_bit(kInt32) | dtype_bit(kInt64), s);
  r.add("random", "bernoulli", kAllSet, s);
  r.add("random", "rand_like", kFloatingSet, s);
  r.add("random", "randn_like", kFloatingSet, s);
  r.add("random", "multinomial", kFloatingSet, s);
}

}  // namespace ember
