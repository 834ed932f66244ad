// nn::GraphStep: a training step captured as a CUDA graph gives the same training as eager steps
// (losses, parameters, gradients, optimizer state), across learning-rate schedules, several
// batch shapes, and the steps it cannot capture.
#include <doctest/doctest.h>

#include <cmath>

#include "ember.h"
#include "tests/harness.h"

using namespace ember;
using namespace ember::test;

namespace {

struct Run {
  std::vector<double> losses;
  std::vector<Tensor> params, grads;
  std::map<std::string, Tensor> optimizer_state;
  nn::GraphStepStats stats;
};

nn::Sequential make_mlp(Device device, bool dropout) {
  manual_seed(7);
  std::vector<std::shared_ptr<nn::Module>> layers{std::make_shared<nn::Linear>(64, 48), std::make_shared<nn::ReLU>()};
  if (dropout) layers.push_back(std::make_shared<nn::Dropout>(0.25));
  layers.push_back(std::make_shared<nn::Linear>(48, 10));
  nn::Sequential m(layers);
  m.to(device);
  m.train();
  return m;
}

// Batch i of `rows` rows: deterministic inputs and labels on `device`.
TensorList batch(int i, int64_t rows, Device device) {
  Tensor x = from_ref(random_ref({rows, 64}, -1, 1, 500 + i), kFloat32, device);
  Tensor y = from_ref(random_int_ref({rows}, 0, 9, 900 + i), kInt64, device);
  return {x, y};
}

// Trains with Adam (or SGD with momentum) and a cosine schedule stepped every step, through a
// GraphStep; batches of 16 rows, then 8, then 16 again (a second signature and a return).
template <typename MakeOptimizer>
Run train(Device device, bool graphs, bool dropout, MakeOptimizer make_optimizer, int steps = 14) {
  nn::Sequential model = make_mlp(device, dropout);
  auto opt = make_optimizer(model.parameters());
  nn::CosineAnnealingLR schedule(*opt, steps);
  nn::GraphStep step(
      *opt, [&](const TensorList& b) { return nn::cross_entropy(model.forward(b[0]), b[1]); },
      {.cuda_graphs = graphs, .warmup_steps = 2});
  manual_seed(11);  // the dropout masks
  Run r;
  for (int i = 0; i < steps; ++i) {
    const int64_t rows = i >= 7 && i < 11 ? 8 : 16;
    r.losses.push_back(step.step(batch(i % 2, rows, device)).item<double>());  // two batches, fitted
    schedule.step();
  }
  for (const Tensor& p : model.parameters()) {
    r.params.push_back(p.detach().clone());
    r.grads.push_back(p.grad().defined() ? p.grad().clone() : Tensor());
  }
  r.optimizer_state = opt->state_dict();
  r.stats = step.stats();
  return r;
}

auto adam() {
  return [](std::vector<Tensor> ps) {
    nn::AdamOptions o;
    o.lr = 0.02;
    o.weight_decay = 0.01;
    return std::make_unique<nn::Adam>(std::move(ps), o);
  };
}

auto sgd() {
  return [](std::vector<Tensor> ps) {
    return std::make_unique<nn::SGD>(std::move(ps), nn::SGDOptions{.lr = 0.1, .momentum = 0.9});
  };
}

void check_same_training(const Run& got, const Run& want) {
  REQUIRE(got.losses.size() == want.losses.size());
  for (size_t i = 0; i < got.losses.size(); ++i) {
    INFO("step ", i);
    CHECK(got.losses[i] == doctest::Approx(want.losses[i]).epsilon(1e-5));
  }
  REQUIRE(got.params.size() == want.params.size());
  for (size_t i = 0; i < got.params.size(); ++i) {
    INFO("parameter ", i);
    check_close(got.params[i], to_ref(want.params[i]), kFloat32, 4);
    REQUIRE(got.grads[i].defined() == want.grads[i].defined());
    if (got.grads[i].defined()) check_close(got.grads[i], to_ref(want.grads[i]), kFloat32, 4);
  }
  // The optimizer's own state (step counts, moments, momentum, the scheduled learning rate)
  // went through the same steps: what a checkpoint would save.
  REQUIRE(got.optimizer_state.size() == want.optimizer_state.size());
  for (const auto& entry : want.optimizer_state) {  // not a structured binding: INFO captures it (clang 14)
    const std::string& name = entry.first;
    INFO("optimizer state ", name);
    REQUIRE(got.optimizer_state.count(name) == 1);
    check_close(got.optimizer_state.at(name), to_ref(entry.second), entry.second.dtype(), 4);
  }
}

}  // namespace

DEVICE_TEST("GraphStep: captured training steps follow eager ones (Adam and SGD, a schedule, two batch shapes)") {
  for (int which = 0; which < 2; ++which) {
    INFO(std::string(which == 0 ? "Adam" : "SGD with momentum"));
    const Run graphed = which == 0 ? train(device, true, false, adam()) : train(device, true, false, sgd());
    const Run eager = which == 0 ? train(device, false, false, adam()) : train(device, false, false, sgd());
    check_same_training(graphed, eager);
    // The losses fall: the steps really train (and a replay is not a no-op).
    CHECK(graphed.losses[13] < 0.9 * graphed.losses[1]);  // batch 1 of 16 rows, first and last seen
    CHECK(eager.stats.captures == 0);
    CHECK(eager.stats.eager_steps == 14);
    if (device.is_cuda()) {
      // 16 rows: 2 eager, captured at step 2, replayed to step 6 and for steps 11-13; 8 rows:
      // 2 eager (steps 7, 8), captured at step 9, replayed at step 10.
      CHECK(graphed.stats.capture_failure == "");
      CHECK(graphed.stats.captures == 2);
      CHECK(graphed.stats.eager_steps == 4);
      CHECK(graphed.stats.replays == 10);
    } else {
      CHECK(graphed.stats.captures == 0);
      CHECK(graphed.stats.capture_failure.find("CUDA") != std::string::npos);
    }
  }
}

DEVICE_TEST("GraphStep: a step drawing random numbers (dropout) is not captured and trains eagerly") {
  const Run graphed = train(device, true, true, adam(), 6);
  const Run eager = train(device, false, true, adam(), 6);
  check_same_training(graphed, eager);
  CHECK(graphed.stats.captures == 0);
  CHECK(graphed.stats.eager_steps == 6);
  if (device.is_cuda()) CHECK(graphed.stats.capture_failure.find("random numbers") != std::string::npos);
}

TEST_CASE("GraphStep: batches on the host and bad options" * doctest::skip(!cuda_available())) {
  const Device device = Device::cuda(0);
  nn::Sequential model = make_mlp(device, false);
  nn::Adam opt(model.parameters(), {});
  nn::GraphStep step(opt, [&](const TensorList& b) {
    return nn::cross_entropy(model.forward(b[0].to(device)), b[1].to(device));
  });
  for (int i = 0; i < 4; ++i) step.step(batch(i, 16, Device::cpu()));
  CHECK(step.stats().captures == 0);
  CHECK(step.stats().eager_steps == 4);
  CHECK(step.stats().capture_failure.find("copy the batch to cuda:0") != std::string::npos);
}

TEST_CASE("GraphStep: options are checked") {
  nn::Sequential model = make_mlp(Device::cpu(), false);
  nn::SGD opt(model.parameters(), {});
  auto loss = [&](const TensorList& b) { return nn::cross_entropy(model.forward(b[0]), b[1]); };
  check_error([&] { nn::GraphStep(opt, loss, {.warmup_steps = 0}); }, ErrorCode::InvalidArgument,
              "at least 1 warm-up step");
  check_error([&] { nn::GraphStep(opt, nullptr); }, ErrorCode::InvalidArgument, "expected a loss function");
}

TEST_CASE("GraphStep: a replay whose update no longer matches drops its graph and steps eagerly" *
          doctest::skip(!cuda_available())) {
  const Device device = Device::cuda(0);
  nn::Sequential model = make_mlp(device, false);
  nn::Linear unused(4, 4);  // optimised, but not in the loss: no gradient when captured
  unused.to(device);
  std::vector<Tensor> params = model.parameters();
  for (const Tensor& p : unused.parameters()) params.push_back(p);
  nn::SGD opt(params, {.lr = 0.1});
  nn::GraphStep step(
      opt, [&](const TensorList& b) { return nn::cross_entropy(model.forward(b[0]), b[1]); }, {.warmup_steps = 1});
  step.step(batch(0, 16, device));
  step.step(batch(1, 16, device));
  REQUIRE(step.stats().captures == 1);
  const Tensor before = unused.parameters()[0].detach().clone();
  unused.parameters()[0].set_grad(ones({4, 4}, {kFloat32, device}));  // one more tensor for the update
  const double loss = step.step(batch(0, 16, device)).item<double>();
  CHECK(std::isfinite(loss));
  CHECK(step.stats().capture_failure.find("the graph was dropped") != std::string::npos);
  CHECK(step.stats().eager_steps == 2);
  CHECK(step.stats().replays == 1);
  // The eager step cleared that gradient first, as zero_grad does: the weight is untouched.
  check_close(unused.parameters()[0].detach(), to_ref(before), kFloat32);
  step.step(batch(1, 16, device));  // eager from now on
  CHECK(step.stats().eager_steps == 3);
}
