#include "tools/model_bench.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "ember.h"
#include "serialization/json.h"
#include "tools/model_commands.h"

namespace ember::tools {

namespace {

struct Spread {
  double median = 0, p10 = 0, p90 = 0;
};

Spread spread_of(std::vector<double> v) {
  if (v.empty()) return {};
  std::sort(v.begin(), v.end());
  auto at = [&](double q) { return v[static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5)]; };
  return {at(0.5), at(0.1), at(0.9)};
}

double mib(size_t bytes) { return static_cast<double>(bytes) / (1 << 20); }

// The largest blocks at the recorded peak: "[[MiB, node], ...]", or one line each.
constexpr size_t kPeakBlocksShown = 8;

std::string peak_blocks_json(const std::vector<MemoryPlan::PeakBlock>& blocks) {
  std::string out = "[";
  for (size_t i = 0; i < blocks.size() && i < kPeakBlocksShown; ++i) {
    char size[32];
    std::snprintf(size, sizeof size, "%.3f", mib(blocks[i].bytes));
    out += str_cat(i ? ", " : "", "[", size, ", ", json_string(blocks[i].site), "]");
  }
  return out + "]";
}

// The most bytes tensors on one device held during a call, beyond what they held before it.
class MemoryProbe {
 public:
  explicit MemoryProbe(Device device) : device_(device) {}
  template <typename F>
  size_t peak_of(F&& call) const {
    sync();
    const size_t base = allocated();
    reset_peak();
    call();
    sync();
    return peak() - base;
  }

 private:
  void sync() const {
    if (device_.is_cuda()) cuda::synchronize(device_.index);
  }
  size_t allocated() const {
    return device_.is_cuda() ? cuda::memory_stats(device_.index).allocated : cpu_memory_stats().allocated;
  }
  size_t peak() const {
    return device_.is_cuda() ? cuda::memory_stats(device_.index).peak_allocated : cpu_memory_stats().peak_allocated;
  }
  void reset_peak() const {
    if (device_.is_cuda()) cuda::reset_peak_memory_stats(device_.index);
    else cpu_reset_peak_memory_stats();
  }
  Device device_;
};

}  // namespace

int model_bench(const std::string& path, const BenchOptions& o) {
  EMBER_CHECK(o.batch >= 1 && o.iterations >= 1 && o.warmup >= 0, InvalidArgument,
              "[bench] --batch and --iterations must be at least 1 and --warmup at least 0");
  const Device device = parse_device(o.device);
  const bool on_cuda = device.is_cuda();
  if (on_cuda) cuda::set_allow_tf32(o.tf32);
  std::optional<DType> dtype;
  if (o.dtype == "float16" || o.dtype == "fp16" || o.dtype == "half") dtype = kFloat16;
  else if (o.dtype == "bfloat16" || o.dtype == "bf16") dtype = kBFloat16;
  else EMBER_CHECK(o.dtype.empty() || o.dtype == "float32", InvalidArgument, "[bench] --dtype: float32, float16 or bfloat16, got \"", o.dtype, "\"");
  Model m = load(path, device, {.trainable = false});
  m.set_inference_options(
      {.optimize = o.optimize, .cuda_graphs = o.cuda_graphs, .dtype = dtype, .plan_memory = o.plan_memory});
  const TensorList inputs = random_inputs(m.graph(), device, o.batch);
  NoGradGuard no_grad;

  // The first forward lets the libraries pick their algorithms and cache what they keep; the
  // second records the memory plan (allocating as an unplanned run does), and is timed before a
  // capture when CUDA graphs are on: its peak over what was held before it is that call's
  // activations (and outputs).
  m.forward(inputs);
  const MemoryProbe memory(device);
  const size_t second_call = memory.peak_of([&] { m.forward(inputs); });
  for (int i = 0; i < o.warmup; ++i) m.forward(inputs);
  if (on_cuda) cuda::synchronize(device.index);
  // The steady state, where the eager path runs (no CUDA graph): one more forward after the
  // warm-up, with the arena it keeps between calls counted as its own.
  const bool eager_steady = !on_cuda || !o.cuda_graphs;
  size_t activation_peak = second_call;
  if (eager_steady) {
    const size_t held = m.inference_stats().arena_held;
    activation_peak = held + memory.peak_of([&] { m.forward(inputs); });
  }

  // Device time per forward, queued back to back (CUDA), or wall-clock time (CPU).
  std::vector<double> per_forward, latency, host;
  using Clock = std::chrono::steady_clock;
  if (on_cuda) {
    std::vector<cuda::Event> marks;
    for (int i = 0; i <= o.iterations; ++i) marks.emplace_back(device.index);
    marks[0].record();
    for (int i = 0; i < o.iterations; ++i) {
      // The host's time in each call: where it is close to the device time per forward, the
      // device waits on the host (launch-bound), and fewer or cheaper calls are what would help.
      const auto t0 = Clock::now();
      m.forward(inputs);
      host.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      marks[i + 1].record();
    }
    marks.back().synchronize();
    for (int i = 0; i < o.iterations; ++i) per_forward.push_back(cuda::Event::elapsed_ms(marks[i], marks[i + 1]));
    // End-to-end latency: one forward from the call until its outputs are ready.
    for (int i = 0; i < o.iterations; ++i) {
      const auto t0 = Clock::now();
      m.forward(inputs);
      cuda::synchronize(device.index);
      latency.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    }
  } else {
    for (int i = 0; i < o.iterations; ++i) {
      const auto t0 = Clock::now();
      m.forward(inputs);
      per_forward.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    }
    latency = per_forward;
    host = per_forward;
  }
  // Reduced precision: the largest difference from the float32 run, relative to its largest value.
  double relative_error = 0;
  if (dtype) {
    Model reference = load(path, device, {.trainable = false});
    reference.set_inference_options({.cuda_graphs = false});
    const TensorList want = reference.forward(inputs), got = m.forward(inputs);
    for (size_t i = 0; i < want.size(); ++i) {
      if (!is_floating(want[i].dtype())) continue;
      const Tensor w = want[i].to(kFloat64), g = got[i].to(kFloat64);
      const double scale = std::max(amax(abs(w)).item<double>(), 1e-30);
      relative_error = std::max(relative_error, amax(abs(sub(g, w))).item<double>() / scale);
    }
  }
  const Spread t = spread_of(per_forward), l = spread_of(latency), h = spread_of(host);
  const InferenceStats s = m.inference_stats();
  const double weights = mib(static_cast<size_t>(m.parameter_bytes()));
  const double graph_memory = on_cuda ? mib(cuda::graph_memory_stats(device.index).used_peak) : 0;
  const double throughput = 1000.0 * static_cast<double>(o.batch) / t.median;

  if (o.json) {
    std::printf(
        "{\"model\": \"%s\", \"device\": \"%s\", \"batch\": %lld, \"median_ms\": %.5f, \"p10_ms\": %.5f, "
        "\"p90_ms\": %.5f, \"latency_ms\": %.5f, \"host_ms\": %.5f, \"throughput\": %.2f, \"weights_mib\": %.3f, "
        "\"activation_peak_mib\": %.3f, \"graph_memory_mib\": %.3f, \"graphs_captured\": %d, "
        "\"graph_replays\": %lld, \"graphs_dropped\": %d, \"nodes_before\": %d, \"nodes_after\": %d, "
        "\"dtype\": \"%s\", \"relative_error\": %.3g, \"arena_mib\": %.3f, \"planned_peak_mib\": %.3f, "
        "\"planned_runs\": %lld, \"planned_fallbacks\": %lld, \"planned_recordings\": %lld, "
        "\"activation_second_call_mib\": %.3f, \"activation_steady_state\": %s, \"outputs_in_arena\": %s, "
        "\"peak_blocks\": %s}\n",
        path.c_str(), device.str().c_str(), static_cast<long long>(o.batch), t.median, t.p10, t.p90, l.median,
        h.median, throughput, weights, mib(activation_peak), graph_memory, s.graphs_captured,
        static_cast<long long>(s.graph_replays), s.graphs_dropped, s.passes.nodes_before, s.passes.nodes_after,
        dtype ? dtype_name(*dtype) : "as exported", relative_error, mib(s.arena_bytes), mib(s.planned_peak),
        static_cast<long long>(s.planned_runs), static_cast<long long>(s.planned_fallbacks),
        static_cast<long long>(s.planned_recordings), mib(second_call), eager_steady ? "true" : "false",
        s.outputs_in_arena ? "true" : "false", peak_blocks_json(s.peak_blocks).c_str());
    return 0;
  }
  std::printf("model      %s on %s, batch %lld\n", path.c_str(), device.str().c_str(), static_cast<long long>(o.batch));
  std::printf("graph      %s\n", o.optimize ? s.passes.summary().c_str() : "not optimised (--no-optimize)");
  if (on_cuda) {
    std::string graphs = "off (--no-cuda-graphs)";
    if (o.cuda_graphs && s.graphs_captured == 0) graphs = "not captured: " + s.capture_failure;
    if (o.cuda_graphs && s.graphs_captured > 0)
      graphs = str_cat(s.graphs_captured, " captured, ", s.graph_replays, " replays; ", s.graph_timing);
    std::printf("cuda graph %s\n", graphs.c_str());
  }
  std::printf("time       median %.4f ms, p10 %.4f, p90 %.4f (%s, %d forwards after %d warm-up)\n", t.median, t.p10,
              t.p90, on_cuda ? "device events, queued back to back" : "wall clock", o.iterations, o.warmup);
  if (on_cuda) {
    std::printf("latency    median %.4f ms, p10 %.4f, p90 %.4f (call to outputs ready)\n", l.median, l.p10, l.p90);
    std::printf("host       median %.4f ms in each call of the timed forwards%s\n", h.median,
                h.median > 0.8 * t.median ? " (close to the device time: launch-bound)" : "");
  }
  std::printf("throughput %.1f samples/s\n", throughput);
  if (dtype)
    std::printf("precision  %s: largest output difference from float32 %.3g of the largest value\n",
                dtype_name(*dtype), relative_error);
  char activations[160];
  if (eager_steady)
    std::snprintf(activations, sizeof activations,
                  "activations peak %.2f MiB (an eager forward after the warm-up, its arena included; the second call "
                  "%.2f MiB)", mib(activation_peak), mib(second_call));
  else
    std::snprintf(activations, sizeof activations,
                  "activations peak %.2f MiB (the second call, eager, before the capture)", mib(activation_peak));
  if (on_cuda)
    std::printf("memory     weights %.2f MiB; %s; CUDA graphs %.2f MiB\n", weights, activations, graph_memory);
  else
    std::printf("memory     weights %.2f MiB; %s\n", weights, activations);
  if (!o.plan_memory)
    std::printf("planned    off (--no-memory-plan)\n");
  else if (s.planned_runs > 0)
    std::printf("planned    arena %.2f MiB for intermediates%s whose recorded peak was %.2f MiB; %lld eager forwards "
                "from it, %lld allocations outside it; %lld recorded\n",
                mib(s.arena_bytes), s.outputs_in_arena ? " and outputs" : "", mib(s.planned_peak),
                static_cast<long long>(s.planned_runs),
                static_cast<long long>(s.planned_fallbacks), static_cast<long long>(s.planned_recordings));
  else
    std::printf("planned    no eager forward ran from an arena (CUDA graphs took over)\n");
  for (size_t i = 0; i < s.peak_blocks.size() && i < kPeakBlocksShown; ++i)
    std::printf("%s %8.3f MiB from %s\n", i ? "          " : "at peak   ", mib(s.peak_blocks[i].bytes),
                s.peak_blocks[i].site.empty() ? "(no node)" : s.peak_blocks[i].site.c_str());
  if (s.peak_blocks.size() > kPeakBlocksShown)
    std::printf("           and %zu smaller blocks\n", s.peak_blocks.size() - kPeakBlocksShown);
  return 0;
}

}  // namespace ember::tools
