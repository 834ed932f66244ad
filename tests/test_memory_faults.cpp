// Memory faults (issue 10): inference and training under a device memory cap fail with
// OutOfMemory partway through, give back everything they took, change no weight or optimizer
// state, and run as before once the cap is lifted.
#include <filesystem>

#include "ember.h"
#include "tests/harness.h"

using namespace ember;
using namespace ember::test;
namespace fs = std::filesystem;

namespace {

const auto kNeedsGpu = doctest::skip(!cuda_available());

size_t held() {
  cuda::synchronize(0);
  return cuda::memory_stats(0).allocated;
}

// Bytes a piece of work allocates beyond what tensors hold before it (its peak).
size_t bytes_needed(const std::function<void()>& work) {
  const size_t start = held();
  cuda::reset_peak_memory_stats(0);
  work();
  return cuda::memory_stats(0).peak_allocated - start;
}

// Caps ember's device pool `headroom` bytes above what tensors hold now; lifted on scope exit.
struct MemoryCap {
  explicit MemoryCap(size_t headroom) { cuda::set_memory_cap(0, held() + headroom); }
  ~MemoryCap() { cuda::set_memory_cap(0, std::nullopt); }
  MemoryCap(const MemoryCap&) = delete;
  MemoryCap& operator=(const MemoryCap&) = delete;
};

}  // namespace

TEST_CASE("memory faults: inference under a device memory cap fails with OutOfMemory, frees what it took, "
          "and runs once the cap is lifted" *
          kNeedsGpu) {
  const Device device = Device::cuda(0);
  for (const std::string name : {"cnn", "transformer"}) {
    INFO(name);
    Model m = load((model_fixture(name) / "model.ember").string(), device, {.trainable = false});
    const TensorList inputs = model_fixture_inputs(name, device);
    NoGradGuard no_grad;

    // Eager: the cap falls halfway through the forward's activations. Without the planned arena,
    // which once made takes no memory under a cap (model/inference.cpp): the allocator's path.
    m.set_inference_options({.cuda_graphs = false, .plan_memory = false});
    Tensor want = m.forward(inputs)[0];
    const size_t need = bytes_needed([&] { m.forward(inputs); });
    REQUIRE(need > 0);
    size_t start = held();
    for (const double part : {0.0, 0.5, 0.9}) {
      INFO(part);
      {
        MemoryCap cap(static_cast<size_t>(part * static_cast<double>(need)));
        check_error([&] { m.forward(inputs); }, ErrorCode::OutOfMemory, "memory cap");
      }
      CHECK(held() == start);
      CHECK(relative_difference(m.forward(inputs)[0], want) < 1e-6);
    }

    // CUDA graphs: the capture itself runs out of memory. The call fails (its eager fallback
    // is capped too), the shape is not written off, and the next call captures it.
    m.set_inference_options({.measure_graphs = false, .plan_memory = false});
    CHECK(relative_difference(m.forward(inputs)[0], want) < 1e-6);  // eager: the shape's first run
    start = held();
    {
      MemoryCap cap(need / 2);
      check_error([&] { m.forward(inputs); }, ErrorCode::OutOfMemory, "memory cap");
    }
    CHECK(held() == start);
    InferenceStats s = m.inference_stats();
    CHECK(s.graphs_captured == 0);
    CHECK(s.capture_failure.find("memory cap") != std::string::npos);
    CHECK(relative_difference(m.forward(inputs)[0], want) < 1e-6);
    s = m.inference_stats();
    CHECK(s.graphs_captured == 1);
    CHECK(s.graph_replays == 1);
    // A replay with no room for its outputs' copies fails the same way; the graph stays.
    start = held();
    {
      MemoryCap cap(0);
      check_error([&] { m.forward(inputs); }, ErrorCode::OutOfMemory, "memory cap");
    }
    CHECK(held() == start);
    CHECK(relative_difference(m.forward(inputs)[0], want) < 1e-6);
    CHECK(m.inference_stats().graphs_captured == 1);
  }
}

TEST_CASE("memory faults: a training step under a device memory cap fails with OutOfMemory and changes "
          "nothing; the retried step equals an uncapped one" *
          kNeedsGpu) {
  const Device device = Device::cuda(0);
  const fs::path path = model_fixture("cnn") / "model.ember";
  const TensorList inputs = model_fixture_inputs("cnn", device);
  Model m = load(path.string(), device), reference = load(path.string(), device);
  nn::Adam opt(m.parameters(), {.lr = 1e-2, .weight_decay = 0.01, .decoupled_weight_decay = true});
  nn::Adam reference_opt(reference.parameters(), {.lr = 1e-2, .weight_decay = 0.01, .decoupled_weight_decay = true});
  auto train_step = [&](Model& model, nn::Optimizer& o) {
    o.zero_grad();
    const Tensor y = model.forward(inputs)[0];
    mean(mul(y, y)).backward();
    o.step();
  };
  auto weights = [](Model& model) {
    TensorList out;
    for (const Tensor& p : model.parameters()) out.push_back(p.detach().clone());
    return out;
  };
  const TensorList initial = weights(m);
  // The reference's first step tells how much a step needs: activations, gradients and the
  // optimizer's new state.
  const size_t need = bytes_needed([&] { train_step(reference, reference_opt); });
  REQUIRE(need > 0);

  // Caps from nothing to most of a step: each fails in the forward, the backward or the
  // optimizer's state, and leaves the weights, the memory and the optimizer as they were.
  const size_t start = held();
  int failures = 0;
  for (const double part : {0.0, 0.2, 0.4, 0.6, 0.8, 0.95}) {
    INFO(part);
    {
      MemoryCap cap(static_cast<size_t>(part * static_cast<double>(need)));
      try {
        train_step(m, opt);
        FAIL_CHECK("expected OutOfMemory");
      } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::OutOfMemory);
        ++failures;
      }
    }
    opt.zero_grad();  // a failed backward may have left some gradients
    CHECK(held() == start);
    const TensorList now = weights(m);
    for (size_t i = 0; i < now.size(); ++i) CHECK(relative_difference(now[i], initial[i]) == 0);
    CHECK(opt.state_dict().size() == 1);  // only "lr": no step was counted, no state kept
  }
  CHECK(failures == 6);

  // Uncapped, two steps give the reference's weights: the failed steps left no trace (a step
  // counted twice would change Adam's bias correction).
  train_step(m, opt);
  train_step(m, opt);
  train_step(reference, reference_opt);
  const TensorList got = weights(m), want = weights(reference);
  for (size_t i = 0; i < got.size(); ++i) CHECK(relative_difference(got[i], want[i]) < 1e-5);
}
