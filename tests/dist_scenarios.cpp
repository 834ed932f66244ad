#include "tests/dist_scenarios.h"

#include <cmath>

#include "autograd/grad_mode.h"
#include "distributed/data_parallel.h"
#include "model/model.h"
#include "nn/functional.h"
#include "nn/module.h"
#include "nn/optim.h"
#include "nn/vision_modules.h"
#include "ops/ops.h"
#include "runtime/error.h"

namespace ember::test {

using distributed::DataParallel;
using distributed::DataParallelOptions;
using distributed::ProcessGroup;
using distributed::ReduceOp;

namespace {

void expect(Failures& f, bool ok, const std::string& what) {
  if (!ok) f.push_back(what);
}

// Largest |a - b| (both brought to the CPU in float64).
double max_diff(const Tensor& a, const Tensor& b) {
  Tensor x = a.detach().to(Device::cpu()).to(DType::Float64);
  Tensor y = b.detach().to(Device::cpu()).to(DType::Float64);
  if (x.sizes() != y.sizes()) return INFINITY;
  if (x.numel() == 0) return 0;
  return max(abs(sub(x, y))).item<double>();
}

// Runs fn, expecting an Error whose code and text match.
template <typename F>
void expect_error(Failures& f, const std::string& what, ErrorCode code, const std::string& text, F&& fn) {
  try {
    fn();
    f.push_back(what + ": no error");
  } catch (const Error& e) {
    if (e.code() != code || std::string(e.what()).find(text) == std::string::npos)
      f.push_back(str_cat(what, ": got ", e.what(), "; expected ", error_code_name(code), " with '", text, "'"));
  }
}

// 1, 2, 3, 1, 2, 3, ... times `scale`: exact in every dtype and small enough that sums over
// eight ranks fit int8.
Tensor pattern(int64_t n, double scale, DType dtype, Device device) {
  Tensor base = add(remainder(arange(n, TensorOptions{DType::Float64, Device::cpu()}), 3), 1);
  return mul(base, scale).to(dtype).to(device);
}

}  // namespace

Failures check_collectives(const std::shared_ptr<distributed::ProcessGroup>& group) {
  ProcessGroup& pg = *group;
  Failures f;
  const int world = pg.size(), me = pg.rank();
  const Device dev = pg.device();
  const double rank_sum = world * (world + 1) / 2.0;
  for (DType dt : {DType::UInt8, DType::Int8, DType::Int32, DType::Int64, DType::Float16, DType::BFloat16,
                   DType::Float32, DType::Float64}) {
    for (int64_t n : {int64_t{1}, int64_t{1000}, int64_t{1} << 20}) {
      if (n > 1000 && dt != DType::Float32) continue;  // one large case: NCCL's multi-chunk path
      const std::string tag = str_cat(dt, " × ", n);
      auto reduced = [&](ReduceOp op, double expected_scale) {
        Tensor t = pattern(n, me + 1, dt, dev);
        pg.all_reduce(t, op);
        expect(f, max_diff(t, pattern(n, expected_scale, dt, Device::cpu())) == 0,
               str_cat("all_reduce ", distributed::reduce_op_name(op), " ", tag));
      };
      reduced(ReduceOp::Sum, rank_sum);
      reduced(ReduceOp::Max, world);
      reduced(ReduceOp::Min, 1);
      if (is_floating(dt)) reduced(ReduceOp::Avg, (world + 1) / 2.0);

      Tensor a = pattern(n, me + 1, dt, dev);
      auto work = pg.all_reduce_async(a, ReduceOp::Sum);
      work->wait();
      expect(f, max_diff(a, pattern(n, rank_sum, dt, Device::cpu())) == 0, "all_reduce_async " + tag);

      Tensor b = pattern(n, me + 1, dt, dev);
      pg.broadcast(b, world - 1);
      expect(f, max_diff(b, pattern(n, world, dt, Device::cpu())) == 0, "broadcast from the last rank " + tag);

      Tensor gathered = zeros({world * n}, TensorOptions{dt, dev});
      pg.all_gather(pattern(n, me + 1, dt, dev), gathered);
      bool gathered_ok = true;
      for (int r = 0; r < world; ++r)
        gathered_ok = gathered_ok && max_diff(gathered.slice(0, r * n, (r + 1) * n), pattern(n, r + 1, dt, dev)) == 0;
      expect(f, gathered_ok, "all_gather " + tag);

      Tensor scattered = zeros({n}, TensorOptions{dt, dev});
      pg.reduce_scatter(pattern(world * n, me + 1, dt, dev), scattered, ReduceOp::Sum);
      expect(f,
             max_diff(scattered, pattern(world * n, rank_sum, dt, Device::cpu()).slice(0, me * n, (me + 1) * n)) == 0,
             "reduce_scatter " + tag);
    }
  }
  pg.barrier();

  // Bad tensors are refused before any rank communicates (every rank makes the same calls).
  expect_error(f, "non-contiguous", ErrorCode::InvalidArgument, "contiguous",
               [&] { pg.all_reduce(zeros({4, 4}, TensorOptions{DType::Float32, dev}).transpose(0, 1)); });
  expect_error(f, "avg of integers", ErrorCode::InvalidArgument, "avg needs a floating-point",
               [&] { pg.all_reduce(zeros({4}, TensorOptions{DType::Int32, dev}), ReduceOp::Avg); });
  expect_error(f, "all_gather output size", ErrorCode::InvalidArgument, "world size × input", [&] {
    pg.all_gather(zeros({3}, TensorOptions{DType::Float32, dev}), zeros({3 * world + 1}, TensorOptions{DType::Float32, dev}));
  });
  if (dev.is_cuda())
    expect_error(f, "CPU tensor to NCCL", ErrorCode::DeviceMismatch, "the process group's device",
                 [&] { pg.all_reduce(zeros({4})); });
  pg.barrier();
  return f;
}

namespace {

std::shared_ptr<nn::Sequential> make_mlp(Device dev) {
  auto m = std::make_shared<nn::Sequential>(std::vector<std::shared_ptr<nn::Module>>{
      std::make_shared<nn::Linear>(5, 16), std::make_shared<nn::Tanh>(), std::make_shared<nn::Linear>(16, 16),
      std::make_shared<nn::Tanh>(), std::make_shared<nn::Linear>(16, 3)});
  m->to(dev);
  return m;
}

// Deterministic data, the same on every rank: rows [rank·b, (rank+1)·b) are a rank's shard.
Tensor inputs(int64_t rows, int64_t cols, double freq, Device dev) {
  return sin(add(mul(arange(rows * cols, TensorOptions{DType::Float32, Device::cpu()}), freq), 0.1))
      .view({rows, cols})
      .to(dev);
}

// Rank r's copy starts from other values, so starting equal proves the broadcast.
void perturb(const std::vector<Tensor>& params, int rank) {
  NoGradGuard no_grad;
  add_(params[0], static_cast<double>(rank));
}

bool same_on_every_rank(ProcessGroup& pg, const Tensor& t) {
  Tensor hi = t.detach().clone(), lo = t.detach().clone();
  pg.all_reduce(hi, ReduceOp::Max);
  pg.all_reduce(lo, ReduceOp::Min);
  return max_diff(hi, lo) == 0;
}

}  // namespace

Failures check_data_parallel_training(const std::shared_ptr<distributed::ProcessGroup>& group) {
  ProcessGroup& pg = *group;
  Failures f;
  const int world = pg.size(), me = pg.rank();
  const Device dev = pg.device();
  const int64_t shard = 4;
  const Tensor x = inputs(shard * world, 5, 0.37, dev), y = inputs(shard * world, 3, 0.23, dev);
  const Tensor mine_x = x.slice(0, me * shard, (me + 1) * shard), mine_y = y.slice(0, me * shard, (me + 1) * shard);

  struct Config {
    std::string name;
    DataParallelOptions options;
    bool accumulate = false;
  };
  DataParallelOptions tiny;
  tiny.bucket_bytes = 256;
  tiny.first_bucket_bytes = 64;
  DataParallelOptions tiny_late = tiny;
  tiny_late.overlap = false;
  DataParallelOptions own_grads;
  own_grads.gradient_as_bucket_view = false;
  for (const Config& c : {Config{"default buckets", {}, false}, Config{"small buckets", tiny, false},
                          Config{"small buckets, overlap off", tiny_late, false},
                          Config{"gradients not bucket views", own_grads, false},
                          Config{"no_sync accumulation", tiny, true}}) {
    auto model = make_mlp(dev);
    perturb(model->parameters(), me);
    DataParallel dp(model, group, c.options);
    expect(f, same_on_every_rank(pg, model->parameters()[0]), c.name + ": parameters start as rank 0's");
    auto reference = make_mlp(dev);
    reference->load_state_dict(model->state_dict());
    nn::SGD opt(model->parameters(), {0.1, 0.9});
    nn::SGD ref_opt(reference->parameters(), {0.1, 0.9});
    const int steps = 5;
    for (int step = 0; step < steps; ++step) {
      model->zero_grad();
      if (c.accumulate) {
        {
          auto pause = dp.no_sync();
          mul(nn::mse_loss(dp.forward(mine_x.slice(0, 0, 2)), mine_y.slice(0, 0, 2)), 0.5).backward();
        }
        mul(nn::mse_loss(dp.forward(mine_x.slice(0, 2, 4)), mine_y.slice(0, 2, 4)), 0.5).backward();
      } else {
        nn::mse_loss(dp.forward(mine_x), mine_y).backward();
      }
      opt.step();
      reference->zero_grad();
      nn::mse_loss((*reference)(x), y).backward();
      ref_opt.step();
    }
    double worst = 0;
    const auto got = model->named_parameters(), want = reference->named_parameters();
    for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, max_diff(got[i].second, want[i].second));
    expect(f, worst <= 2e-5, str_cat(c.name, ": parameters after ", steps, " steps differ from single-process "
                                     "training on the whole batch by ", worst, " (tolerance 2e-5)"));
    const auto& s = dp.stats();
    if (world > 1) {
      expect(f, s.synced_steps == steps, str_cat(c.name, ": ", s.synced_steps, " synchronised steps, expected ", steps));
      if (c.options.bucket_bytes == tiny.bucket_bytes) {
        expect(f, s.buckets > 2, str_cat(c.name, ": ", s.buckets, " buckets, expected several"));
        if (c.options.overlap)
          expect(f, s.launched_during_backward >= s.buckets - 1,
                 str_cat(c.name, ": only ", s.launched_during_backward, " of ", s.buckets,
                         " buckets started during backward"));
        else
          expect(f, s.launched_during_backward == 0, c.name + ": buckets started during backward with overlap off");
        if (dev.is_cuda())
          expect(f, static_cast<int>(dp.last_step_overlap_ms().size()) == s.buckets,
                 c.name + ": a device timeline for every bucket");
      }
    }
  }
  return f;
}

namespace {

// Two heads; `b` joins in only when use_b is set.
class Branchy final : public nn::Module {
 public:
  explicit Branchy(Device dev) {
    a_ = register_module("a", std::make_shared<nn::Linear>(5, 3));
    b_ = register_module("b", std::make_shared<nn::Linear>(5, 3));
    to(dev);
  }
  Tensor forward(const Tensor& x) override { return use_b ? add((*a_)(x), (*b_)(x)) : (*a_)(x); }
  bool use_b = true;

 private:
  std::shared_ptr<nn::Linear> a_, b_;
};

}  // namespace

Failures check_unused_parameters(const std::shared_ptr<distributed::ProcessGroup>& group) {
  ProcessGroup& pg = *group;
  Failures f;
  const int world = pg.size(), me = pg.rank();
  const Device dev = pg.device();
  const Tensor x = inputs(2 * world, 5, 0.41, dev), y = inputs(2 * world, 3, 0.17, dev);

  // Only rank 0 uses b: every rank's b.grad is rank 0's gradient / world.
  {
    auto model = std::make_shared<Branchy>(dev);
    DataParallelOptions o;
    o.find_unused_parameters = true;
    DataParallel dp(model, group, o);
    auto reference = std::make_shared<Branchy>(dev);
    reference->load_state_dict(model->state_dict());
    model->use_b = me == 0;
    nn::mse_loss(dp.forward(x.slice(0, 2 * me, 2 * me + 2)), y.slice(0, 2 * me, 2 * me + 2)).backward();
    Tensor total;
    for (int r = 0; r < world; ++r) {
      reference->use_b = r == 0;
      Tensor l = nn::mse_loss((*reference)(x.slice(0, 2 * r, 2 * r + 2)), y.slice(0, 2 * r, 2 * r + 2));
      total = total.defined() ? add(total, l) : l;
    }
    div(total, static_cast<double>(world)).backward();
    const auto got = model->named_parameters(), want = reference->named_parameters();
    for (size_t i = 0; i < got.size(); ++i) {
      const double d = got[i].second.grad().defined() ? max_diff(got[i].second.grad(), want[i].second.grad()) : INFINITY;
      expect(f, d <= 1e-6, str_cat("find_unused_parameters: ", got[i].first, ".grad differs by ", d));
    }
  }
  // b unused everywhere, no option: every rank gets the same clear error.
  if (world > 1) {
    auto model = std::make_shared<Branchy>(dev);
    model->use_b = false;
    DataParallel dp(model, group);
    expect_error(f, "unused parameter without find_unused_parameters", ErrorCode::InvalidArgument,
                 "received no gradient in this backward: 'b.weight', 'b.bias'",
                 [&] { nn::mse_loss(dp.forward(x), y).backward(); });
    // The group is still usable afterwards.
    model->use_b = true;
    model->zero_grad();
    nn::mse_loss(dp.forward(x), y).backward();
    expect(f, dp.stats().synced_steps == 1, "a step after the error is synchronised");
  }
  return f;
}

Failures check_data_parallel_cnn(const std::shared_ptr<distributed::ProcessGroup>& group) {
  ProcessGroup& pg = *group;
  Failures f;
  const int world = pg.size(), me = pg.rank();
  const Device dev = pg.device();
  auto make = [&] {
    auto m = std::make_shared<nn::Sequential>(std::vector<std::shared_ptr<nn::Module>>{
        std::make_shared<nn::Conv2d>(1, 6, nn::Pair{3, 3}), std::make_shared<nn::BatchNorm2d>(6),
        std::make_shared<nn::ReLU>(), std::make_shared<nn::MaxPool2d>(nn::Pair{2, 2}), std::make_shared<nn::Flatten>(),
        std::make_shared<nn::Linear>(6 * 3 * 3, 10)});
    m->to(dev);
    return m;
  };
  const int64_t shard = 6;
  const Tensor x = inputs(shard * world, 64, 0.31, dev).view({shard * world, 1, 8, 8});
  const Tensor labels = remainder(arange(shard * world, TensorOptions{DType::Int64, Device::cpu()}), 10).to(dev);
  auto model = make();
  perturb(model->parameters(), me);
  DataParallel dp(model, group);
  auto reference = make();
  reference->load_state_dict(model->state_dict());
  nn::SGD opt(model->parameters(), {0.1, 0.9});
  nn::SGD ref_opt(reference->parameters(), {0.1, 0.9});
  for (int step = 0; step < 4; ++step) {
    model->zero_grad();
    nn::cross_entropy(dp.forward(x.slice(0, me * shard, (me + 1) * shard)), labels.slice(0, me * shard, (me + 1) * shard))
        .backward();
    opt.step();
    reference->zero_grad();
    Tensor total;
    for (int r = 0; r < world; ++r) {
      Tensor l = nn::cross_entropy((*reference)(x.slice(0, r * shard, (r + 1) * shard)),
                                   labels.slice(0, r * shard, (r + 1) * shard));
      total = total.defined() ? add(total, l) : l;
    }
    div(total, static_cast<double>(world)).backward();
    ref_opt.step();
  }
  double worst = 0;
  const auto got = model->named_parameters(), want = reference->named_parameters();
  for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, max_diff(got[i].second, want[i].second));
  expect(f, worst <= 5e-5, str_cat("CNN on ", dev, ": parameters after 4 data-parallel steps differ from "
                                   "single-process training by ", worst, " (tolerance 5e-5)"));
  // Each rank's last forward updated its running statistics from its own shard; the next
  // forward starts from rank 0's again (PyTorch's broadcast_buffers).
  dp.before_forward();
  const Tensor running_mean = model->named_buffers()[0].second;
  expect(f, same_on_every_rank(pg, running_mean), "CNN: buffers equal on every rank");
  // The module's own buffer handles still see the statistics batch norm updates (DataParallel
  // moved the buffers' data into one flat tensor per dtype for the broadcast).
  expect(f, max(abs(running_mean.to(Device::cpu()))).item<double>() > 0, "CNN: running_mean was updated");
  return f;
}

Failures check_data_parallel_model(const std::shared_ptr<distributed::ProcessGroup>& group, const std::string& model_path) {
  ProcessGroup& pg = *group;
  Failures f;
  const int world = pg.size(), me = pg.rank();
  const Device dev = pg.device();
  Model model = load(model_path, dev), reference = load(model_path, dev);
  model.train();
  reference.train();
  DataParallel dp(model, group);
  nn::SGD opt(model.parameters(), {0.05, 0.9});
  nn::SGD ref_opt(reference.parameters(), {0.05, 0.9});
  const int64_t shard = 8;
  const Tensor x = mul(add(inputs(shard * world, 64, 0.29, dev), 1), 8);  // pixel-like values in [0, 16]
  const Tensor labels =
      remainder(arange(shard * world, TensorOptions{DType::Int64, Device::cpu()}), 10).to(dev);
  for (int step = 0; step < 3; ++step) {
    for (const Tensor& p : model.parameters()) p.set_grad(Tensor());
    Tensor logits = dp.forward(TensorList{x.slice(0, me * shard, (me + 1) * shard)})[0];
    nn::cross_entropy(logits, labels.slice(0, me * shard, (me + 1) * shard)).backward();
    opt.step();
    for (const Tensor& p : reference.parameters()) p.set_grad(Tensor());
    nn::cross_entropy(reference.forward({x})[0], labels).backward();
    ref_opt.step();
  }
  double worst = 0;
  const auto got = model.named_parameters(), want = reference.named_parameters();
  for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, max_diff(got[i].second, want[i].second));
  expect(f, worst <= 2e-5, str_cat("loaded model: parameters after 3 data-parallel steps differ from "
                                   "single-process training by ", worst));
  return f;
}

}  // namespace ember::test
