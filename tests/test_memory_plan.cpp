// Planned memory (runtime/memory_plan.h, issue 9): a recorded run's allocations are laid out in
// one arena by lifetime and served from it in later runs; a run that strays from the recording
// never gets bytes another live block holds; loaded models' eager runs use it and compute the
// same outputs.
#include <algorithm>

#include "ember.h"
#include "runtime/memory_plan.h"
#include "tests/harness.h"

using namespace ember;
using namespace ember::test;

namespace {

// A small computation with intermediates of several sizes and lifetimes: (x·2 + 1) summed with
// exp(x) over a wider temporary, and its result.
Tensor compute(const Tensor& x) {
  Tensor a = add(mul(x, 2.0), 1.0);
  Tensor wide = cat({x, x, x}, 0);
  Tensor b = exp(wide);
  return add(a, sum(b, {0}, true));
}

}  // namespace

DEVICE_TEST("memory plan: a recorded run's blocks are laid out by lifetime and replayed from one arena") {
  Tensor x = randn({64, 33}, {kFloat32, device});
  const Tensor want = compute(x);
  MemoryPlan plan(device);
  Tensor result;  // made in the run, alive after it: an escaped block
  {
    MemoryPlan::Run run(plan);
    CHECK(!run.replaying());
    result = compute(x);
  }
  CHECK(relative_difference(result, want) == 0);
  MemoryPlan::Stats s = plan.stats();
  CHECK(s.recordings == 1);
  CHECK(s.blocks >= 4);  // 2x, 2x + 1, the concatenation, its exp, its sum (fused or not)
  CHECK(s.escaped_bytes == 64 * 33 * 4);
  CHECK(s.arena_bytes >= s.recorded_peak);
  CHECK(s.recorded_peak > 0);
  for (int i = 0; i < 3; ++i) {
    {
      MemoryPlan::Run run(plan);
      CHECK(run.replaying());
      result = compute(x);
    }
    CHECK(relative_difference(result, want) == 0);  // outside the run: its own allocations differ
  }
  s = plan.stats();
  CHECK(s.replays == 3);
  CHECK(s.fallbacks == 0);
  CHECK(s.recordings == 1);
}

DEVICE_TEST("memory plan: the blocks alive at the recorded peak, named by their sites; the arena held") {
  MemoryPlan plan(device);
  const std::string first = "first", second = "second", inner = "inner";
  auto run_once = [&] {
    Tensor a, b, c;
    {
      MemoryPlan::Site site(first);
      a = empty({1000}, {kFloat32, device});  // 4000 bytes
    }
    {
      MemoryPlan::Site site(second);
      b = empty({300}, {kFloat32, device});
      {
        MemoryPlan::Site nested(inner);
        c = empty({50}, {kFloat32, device});
      }
      Tensor after_nested = empty({10}, {kFloat32, device});  // "second" again: the nested site ended
    }
    a = Tensor();
    Tensor late = empty({20}, {kFloat32, device});  // no site: after the peak, which was a + b + c + 10
  };
  CHECK(plan.stats().peak_blocks.empty());
  {
    MemoryPlan::Run run(plan);
    run_once();
  }
  const std::vector<MemoryPlan::PeakBlock> peak = plan.stats().peak_blocks;
  REQUIRE(peak.size() == 4);
  CHECK(peak[0].bytes == 4000);
  CHECK(peak[0].site == "first");
  CHECK(peak[1].bytes == 1200);
  CHECK(peak[1].site == "second");
  CHECK(peak[2].bytes == 200);
  CHECK(peak[2].site == "inner");
  CHECK(peak[3].bytes == 40);
  CHECK(peak[3].site == "second");
  CHECK(plan.stats().recorded_peak == 5440);
  CHECK(plan.stats().arena_held == 0);  // a recording makes no arena
  {
    MemoryPlan::Run run(plan);
    REQUIRE(run.replaying());
    run_once();
  }
  CHECK(plan.stats().arena_held == plan.stats().arena_bytes);
  CHECK(plan.stats().arena_held >= 5440);
}

namespace {

// A block's size in units and its lifetime in event times (all distinct): made, freed (-1: alive
// at the end, an output).
struct Life {
  int64_t units, made, freed;
};

// Allocates and frees blocks in the order of their times; returns the outputs (and block `keep`,
// an intermediate the caller keeps past its recorded lifetime, last).
std::vector<Tensor> live_through(const std::vector<Life>& lives, int64_t unit, Device device, double fill = 0,
                                 int keep = -1) {
  std::vector<std::pair<int64_t, int64_t>> events;  // (time, k + 1 to make block k, -(k + 1) to free it)
  for (size_t k = 0; k < lives.size(); ++k) {
    events.emplace_back(lives[k].made, static_cast<int64_t>(k) + 1);
    if (lives[k].freed >= 0) events.emplace_back(lives[k].freed, -static_cast<int64_t>(k) - 1);
  }
  std::sort(events.begin(), events.end());
  std::vector<Tensor> held(lives.size());
  for (const auto& [time, what] : events) {
    if (what > 0) held[what - 1] = full({lives[what - 1].units * unit}, fill, {kUInt8, device});
    else if (-what - 1 != keep) held[-what - 1] = Tensor();
  }
  std::vector<Tensor> outputs;
  for (size_t k = 0; k < lives.size(); ++k)
    if (lives[k].freed < 0) outputs.push_back(held[k]);
  if (keep >= 0) outputs.push_back(held[keep]);
  return outputs;
}

}  // namespace

DEVICE_TEST("memory plan: the arena reaches the most bytes alive at once where largest-first would not") {
  // Placed largest first, first made first or longest lived first, these need 20 units; 19 are
  // alive at once at most, and one order fits them in 19.
  const std::vector<Life> lives = {{4, 2, 33}, {6, 7, 40}, {4, 26, 44}, {4, 27, 34}, {1, 31, 38}, {6, 39, 45}};
  const int64_t unit = 4096;
  MemoryPlan plan(device);
  {
    MemoryPlan::Run run(plan);
    live_through(lives, unit, device);
  }
  CHECK(plan.stats().recorded_peak == static_cast<size_t>(19 * unit));
  CHECK(plan.stats().arena_bytes == static_cast<size_t>(19 * unit));
  for (int i = 0; i < 2; ++i) {
    MemoryPlan::Run run(plan);
    REQUIRE(run.replaying());
    live_through(lives, unit, device);
  }
  CHECK(plan.stats().fallbacks == 0);
}

DEVICE_TEST("memory plan: outputs that are most of the memory are in the arena, which each run's outputs keep") {
  // Intermediates of 2 + 3 units, then a 20-unit output made while one of them is alive: beside
  // an arena it would take 25 units at its peak, in it 23.
  const std::vector<Life> lives = {{2, 1, 4}, {3, 2, 6}, {20, 5, -1}};
  const int64_t unit = 4096;
  MemoryPlan plan(device);
  std::vector<Tensor> recorded;  // kept past the run: its output
  {
    MemoryPlan::Run run(plan);
    recorded = live_through(lives, unit, device);
  }
  recorded.clear();
  MemoryPlan::Stats s = plan.stats();
  CHECK(s.outputs_in_arena);
  CHECK(s.arena_bytes == static_cast<size_t>(23 * unit));
  CHECK(s.recorded_peak == static_cast<size_t>(23 * unit));
  CHECK(s.escaped_bytes == static_cast<size_t>(20 * unit));
  // Each replay's output lives in that run's arena; a kept output is never overwritten.
  std::vector<Tensor> first, second;
  {
    MemoryPlan::Run run(plan);
    REQUIRE(run.replaying());
    first = live_through(lives, unit, device, 1);
  }
  CHECK(plan.stats().arena_held == 0);  // the output keeps it, not the plan
  {
    MemoryPlan::Run run(plan);
    REQUIRE(run.replaying());  // a fresh arena: the kept output does not stop the replay
    second = live_through(lives, unit, device, 2);
  }
  REQUIRE(first.size() == 1);
  REQUIRE(second.size() == 1);
  CHECK(min(first[0]).item<int64_t>() == 1);
  CHECK(max(first[0]).item<int64_t>() == 1);
  CHECK(min(second[0]).item<int64_t>() == 2);
  CHECK(first[0].data() != second[0].data());
  CHECK(plan.stats().fallbacks == 0);
  CHECK(plan.stats().replays == 2);
  // An intermediate kept past a replay makes the next run record again, as beside the arena.
  std::vector<Tensor> kept;
  {
    MemoryPlan::Run run(plan);
    REQUIRE(run.replaying());
    kept = live_through(lives, unit, device, 3, /*keep=*/0);
  }
  {
    MemoryPlan::Run run(plan);
    CHECK_FALSE(run.replaying());
    live_through(lives, unit, device, 4);
  }
  CHECK(plan.stats().recordings == 2);
  REQUIRE(kept.size() == 2);
  CHECK(min(kept[1]).item<int64_t>() == 3);  // the kept intermediate, untouched by the recording run
  CHECK(max(kept[1]).item<int64_t>() == 3);

  // A small output stays beside the arena: 2 units of output, 5 of intermediates.
  MemoryPlan small(device);
  {
    MemoryPlan::Run run(small);
    recorded = live_through({{2, 1, 4}, {3, 2, 6}, {2, 5, -1}}, unit, device);
  }
  CHECK(small.stats().escaped_bytes == static_cast<size_t>(2 * unit));
  CHECK_FALSE(small.stats().outputs_in_arena);
  CHECK(small.stats().arena_bytes == static_cast<size_t>(5 * unit));
}

DEVICE_TEST("memory plan: blocks alive at once never share bytes; replays hand out arena bytes") {
  MemoryPlan plan(device);
  const std::vector<int64_t> sizes = {1000, 70000, 333, 5000, 70000, 12, 4096, 333};
  auto run_once = [&] {
    std::vector<std::pair<Tensor, double>> live;  // a sliding window of lifetimes
    for (size_t i = 0; i < sizes.size(); ++i) {
      live.emplace_back(full({sizes[i]}, static_cast<double>(i + 1), {kFloat32, device}), static_cast<double>(i + 1));
      if (i % 2 == 1) live.erase(live.begin());
      for (size_t a = 0; a < live.size(); ++a) {
        // Every live tensor holds its own value, and no two share a byte.
        CHECK(min(live[a].first).item<double>() == live[a].second);
        CHECK(max(live[a].first).item<double>() == live[a].second);
        for (size_t b = a + 1; b < live.size(); ++b) {
          auto pa = static_cast<const char*>(live[a].first.data()), pb = static_cast<const char*>(live[b].first.data());
          CHECK((pa + live[a].first.nbytes() <= pb || pb + live[b].first.nbytes() <= pa));
        }
      }
    }
  };
  {
    MemoryPlan::Run run(plan);
    run_once();
  }
  size_t total = 0;
  for (int64_t n : sizes) total += static_cast<size_t>(n) * 4;
  CHECK(plan.stats().arena_bytes < total);
  for (int i = 0; i < 2; ++i) {
    MemoryPlan::Run run(plan);
    REQUIRE(run.replaying());
    run_once();
  }
  CHECK(plan.stats().fallbacks == 0);
}

DEVICE_TEST("memory plan: a replay that strays from the recording falls back and is recorded again") {
  Tensor x = randn({32, 16}, {kFloat32, device});
  MemoryPlan plan(device);
  {
    MemoryPlan::Run run(plan);
    compute(x);
  }
  // Other sizes: every allocation comes from the allocator, values stay right, and the next
  // run records anew.
  Tensor y = randn({48, 16}, {kFloat32, device});
  {
    MemoryPlan::Run run(plan);
    CHECK(run.replaying());
    CHECK(relative_difference(compute(y), compute(y)) == 0);
  }
  CHECK(plan.stats().fallbacks > 0);
  {
    MemoryPlan::Run run(plan);
    CHECK(!run.replaying());
    compute(y);
  }
  CHECK(plan.stats().recordings == 2);
  MemoryPlan::Run run(plan);
  CHECK(run.replaying());
}

DEVICE_TEST("memory plan: an intermediate kept past a replay is never handed out again") {
  Tensor x = randn({40, 40}, {kFloat32, device});
  MemoryPlan plan(device);
  auto step = [&](Tensor* keep) {
    Tensor a = mul(x, 3.0);
    Tensor b = add(a, 1.0);
    if (keep) *keep = a;  // outlives its recorded lifetime
    return sum(mul(b, b));
  };
  {
    MemoryPlan::Run run(plan);
    step(nullptr);
  }
  Tensor kept;
  {
    MemoryPlan::Run run(plan);
    REQUIRE(run.replaying());
    step(&kept);
  }
  const Tensor copy = kept.clone();
  // The next run cannot replay over `kept`'s bytes: it records instead, and `kept` is intact.
  {
    MemoryPlan::Run run(plan);
    CHECK(!run.replaying());
    Tensor other = full({40, 40}, 7.0, {kFloat32, device});
    step(nullptr);
    CHECK(kept.data() != other.data());
  }
  CHECK(relative_difference(kept, copy) == 0);
  // Once it is released the plan replays again.
  kept = Tensor();
  MemoryPlan::Run run(plan);
  CHECK(run.replaying());
}

DEVICE_TEST("memory plan: a second run of a busy plan allocates as usual; a failed run keeps the plan") {
  MemoryPlan plan(device);
  Tensor x = randn({16, 16}, {kFloat32, device});
  {
    MemoryPlan::Run outer(plan);
    MemoryPlan::Run inner(plan);  // the plan is taken: this one does nothing
    CHECK(!inner.replaying());
    compute(x);
  }
  CHECK(plan.stats().recordings == 1);
  try {
    MemoryPlan::Run run(plan);
    compute(x);
    throw std::runtime_error("a failing run");
  } catch (const std::runtime_error&) {
  }
  CHECK(plan.stats().recordings == 1);
  CHECK(plan.stats().replays == 1);
  MemoryPlan::Run run(plan);
  CHECK(run.replaying());
}

DEVICE_TEST("memory plan: loaded models' eager inference runs from an arena with the same outputs") {
  for (const std::string name : {"cnn", "transformer", "mlp"}) {
    INFO(name);
    Model m = load((model_fixture(name) / "model.ember").string(), device, {.trainable = false});
    const TensorList inputs = model_fixture_inputs(name, device);
    NoGradGuard no_grad;
    m.set_inference_options({.cuda_graphs = false, .plan_memory = false});
    const TensorList want = m.forward(inputs);
    m.set_inference_options({.cuda_graphs = false, .plan_memory = true});
    // The first run is not planned (libraries cache on their first call), the second records,
    // and from then on every run replays; a replay that still finds the run changed records
    // once more.
    int64_t fallbacks = 0;
    for (int i = 0; i < 6; ++i) {
      const TensorList got = m.forward(inputs);
      REQUIRE(got.size() == want.size());
      for (size_t k = 0; k < got.size(); ++k) CHECK(relative_difference(got[k], want[k]) == 0);
      const InferenceStats now = m.inference_stats();
      if (i == 0) CHECK(now.planned_recordings == 0);
      if (i == 1) CHECK(now.planned_recordings == 1);
      if (i == 1) CHECK(now.arena_held == 0);  // made by the first replay
      // Kept for the next run, unless the outputs keep each run's arena.
      if (i == 2) CHECK(now.arena_held == (now.outputs_in_arena ? 0 : now.arena_bytes));
      if (i == 4) fallbacks = now.planned_fallbacks;
    }
    const InferenceStats s = m.inference_stats();
    CHECK(s.planned_runs >= 2);
    CHECK(s.planned_fallbacks == fallbacks);
    CHECK(s.arena_bytes > 0);
    CHECK(s.arena_bytes >= s.planned_peak);
    // What the peak is made of, each block named by the node that made it.
    REQUIRE_FALSE(s.peak_blocks.empty());
    size_t at_peak = 0;
    for (const MemoryPlan::PeakBlock& b : s.peak_blocks) {
      at_peak += b.bytes;
      CHECK_FALSE(b.site.empty());  // "node 3 (add \"add\")", or a fused node's name
    }
    CHECK(at_peak == s.planned_peak);
    for (size_t i = 1; i < s.peak_blocks.size(); ++i) CHECK(s.peak_blocks[i - 1].bytes >= s.peak_blocks[i].bytes);
    std::printf("memory plan, %s on %s: arena %zu bytes, recorded peak %zu bytes\n", name.c_str(),
                device.is_cpu() ? "cpu" : "cuda", s.arena_bytes, s.planned_peak);
  }
}
