#include "model/inference.h"

#include "autograd/grad_mode.h"
#include "ops/copy.h"
#include "ops/creation.h"
#include "runtime/error.h"

namespace ember {

namespace {

// A weight's storage and version: either changes when the weight does.
std::pair<const void*, uint64_t> identity_of(const Tensor& t) {
  if (!t.defined()) return {nullptr, 0};
  return {static_cast<const void*>(t.storage().get()), t.version()};
}

std::vector<std::pair<const void*, uint64_t>> fingerprint_of(const std::vector<Tensor>& stored) {
  std::vector<std::pair<const void*, uint64_t>> f;
  f.reserve(stored.size());
  for (const Tensor& t : stored) f.push_back(identity_of(t));
  return f;
}

}  // namespace

InferencePlan::InferencePlan(const graph::Graph& g, const std::vector<Tensor>& stored, Device device,
                             const InferenceOptions& options)
    : graph_(g), stored_(stored), fingerprint_(fingerprint_of(stored)), device_(device), options_(options) {
  for (uint32_t id : g.inputs) declared_inputs_.push_back(g.values[id].dtype);
  for (uint32_t id : g.outputs) declared_outputs_.push_back(g.values[id].dtype);
  if (options_.optimize) stats_.passes = graph::optimize_for_inference(graph_, stored_, {false, device_});
  else stats_.passes.nodes_before = stats_.passes.nodes_after = static_cast<int>(graph_.nodes.size());
  if (options_.dtype) stats_.passes.tensors_converted = graph::convert_precision(graph_, stored_, *options_.dtype);
  executor_ = std::make_unique<graph::Executor>(graph_);
}

InferencePlan::~InferencePlan() = default;

// Checked on every inference forward: compared in place, nothing allocated.
bool InferencePlan::current(const std::vector<Tensor>& stored) const {
  if (stored.size() != fingerprint_.size()) return false;
  for (size_t i = 0; i < stored.size(); ++i)
    if (fingerprint_[i] != identity_of(stored[i])) return false;
  return true;
}

InferenceStats InferencePlan::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  InferenceStats s = stats_;
  s.eager_runs = eager_runs_.load();
  std::lock_guard<std::mutex> plans_lock(plans_mutex_);
  size_t largest = 0;
  for (const auto& [key, p] : planned_) {
    const MemoryPlan::Stats m = p->plan.stats();
    s.arena_bytes += m.arena_bytes;
    s.arena_held += m.arena_held;
    s.outputs_in_arena = s.outputs_in_arena || m.outputs_in_arena;
    s.planned_recordings += m.recordings;
    if (m.recorded_peak >= largest) {
      largest = m.recorded_peak;
      s.peak_blocks = m.peak_blocks;
    }
    s.planned_peak += m.recorded_peak;
    s.planned_runs += m.replays;
    s.planned_fallbacks += m.fallbacks;
  }
  return s;
}

std::optional<InferencePlan::Key> InferencePlan::key_of(const TensorList& inputs) const {
  Key k;
  for (const Tensor& t : inputs) {
    if (!t.defined() || t.device() != device_) return std::nullopt;  // the executor reports it
    k.push_back(static_cast<int64_t>(t.dtype()));
    k.push_back(t.dim());
    k.insert(k.end(), t.sizes().begin(), t.sizes().end());
  }
  return k;
}

TensorList InferencePlan::run_graph(const TensorList& inputs) {
  if (!options_.dtype) return executor_->run(inputs, stored_, {false, device_});
  TensorList cast = inputs;
  for (size_t i = 0; i < cast.size() && i < declared_inputs_.size(); ++i) {
    const Tensor& t = inputs[i];
    const std::string& name = graph_.values[graph_.inputs[i]].name;
    EMBER_CHECK(!t.defined() || t.dtype() == declared_inputs_[i], DTypeMismatch, "[forward] input ", i, " (\"", name,
                "\") should be ", declared_inputs_[i], ", got ", t.dtype());
    if (t.defined() && t.dtype() == kFloat32) cast[i] = t.to(*options_.dtype);
  }
  TensorList out = executor_->run(cast, stored_, {false, device_});
  for (size_t i = 0; i < out.size() && i < declared_outputs_.size(); ++i)
    if (out[i].defined() && out[i].dtype() != declared_outputs_[i]) out[i] = out[i].to(declared_outputs_[i]);
  return out;
}

MemoryPlan* InferencePlan::memory_plan_for(const std::optional<Key>& key) {
  if (!options_.plan_memory || !key) return nullptr;
  std::optional<cuda::Stream> stream;
  if (device_.is_cuda()) stream = cuda::Stream::current(device_.index);
  // Its own lock: run() may hold mutex_ around an eager run.
  std::lock_guard<std::mutex> lock(plans_mutex_);
  auto it = planned_.find(*key);
  if (it == planned_.end()) {
    // Past max_graphs shapes, new shapes run unplanned (a plan is never freed under a run).
    if (planned_.size() >= options_.max_graphs) return nullptr;
    auto p = std::make_unique<Planned>(device_);
    p->stream = stream;
    planned_.emplace(*key, std::move(p));
    // The shape's first run is not recorded: libraries cache things on their first call (an
    // algorithm, a descriptor, a buffer), and a recording of that call would stray at its first
    // replay, which then holds the arena and every fallback allocation at once.
    return nullptr;
  }
  // On CUDA the arena is reused in stream order: only the recording stream's runs use it.
  if (stream && !(*it->second->stream == *stream)) return nullptr;
  return &it->second->plan;
}

TensorList InferencePlan::run_eager(const TensorList& inputs, const std::optional<Key>& key) {
  MemoryPlan* plan = memory_plan_for(key);
  std::optional<MemoryPlan::Run> planned;
  if (plan) planned.emplace(*plan);
  TensorList out = run_graph(inputs);
  planned.reset();
  ++eager_runs_;
  return out;
}

InferencePlan::Captured::~Captured() {
  // The buffers are freed on the streams they were allocated on: wait for a replay still
  // running on another stream first (the whole device: the stream may be an app's, gone by now).
  try {
    if (graph && last_stream) cuda::synchronize(graph->device());
  } catch (const Error&) {
  }
}

TensorList InferencePlan::run(const TensorList& inputs) {
  NoGradGuard no_grad;
  const std::optional<Key> key = key_of(inputs);
  if (!device_.is_cuda() || !options_.cuda_graphs || !key) return run_eager(inputs, key);
  std::unique_lock<std::mutex> lock(mutex_);
  ShapeState& shape = shapes_[*key];  // map references stay valid: shapes are never erased
  if (auto it = captured_.find(*key); it != captured_.end()) {
    if (keeps_graph(*it->second, shape))
      if (std::optional<TensorList> out = replay(*it->second, inputs)) return std::move(*out);
    captured_.erase(it);
    uncapturable_.insert(*key);
  }
  if (uncapturable_.count(*key)) {
    lock.unlock();
    return run_eager(inputs, key);
  }
  // The first run of a shape is eager: it checks the inputs, tells the outputs' shapes, and
  // lets the libraries choose and cache their algorithms outside the capture. With
  // measure_graphs the second is eager too, and timed.
  if (shape.eager_runs == 0) {
    TensorList out = run_eager(inputs, key);
    for (const Tensor& t : out)
      shape.outputs.push_back({t.defined() ? t.sizes() : Shape{}, t.defined() ? t.dtype() : kFloat32, t.defined()});
    ++shape.eager_runs;
    return out;
  }
  if (options_.measure_graphs && shape.eager_runs == 1) {
    shape.eager_start.emplace(device_.index);
    shape.eager_end.emplace(device_.index);
    shape.eager_start->record();
    TensorList out = run_eager(inputs, key);
    shape.eager_end->record();
    ++shape.eager_runs;
    return out;
  }
  if (captured_.size() >= options_.max_graphs && !captured_.empty()) {
    auto oldest = captured_.begin();
    for (auto it = captured_.begin(); it != captured_.end(); ++it)
      if (it->second->order < oldest->second->order) oldest = it;
    captured_.erase(oldest);
  }
  std::unique_ptr<Captured> c;
  try {
    c = capture(inputs, shape.outputs);
  } catch (const Error& e) {
    // Run this shape eagerly from now on; the reason is kept for InferenceStats. Running out
    // of memory may pass (a cap lifted, other tensors freed): such a capture is tried again on
    // the next call, up to three times.
    if (e.code() != ErrorCode::OutOfMemory || ++shape.capture_out_of_memory >= 3) uncapturable_.insert(*key);
    stats_.capture_failure = e.what();
    lock.unlock();
    return run_eager(inputs, key);
  }
  c->order = captures_made_++;
  ++stats_.graphs_captured;
  Captured& ref = *c;
  captured_[*key] = std::move(c);
  if (std::optional<TensorList> out = replay(ref, inputs)) return std::move(*out);
  captured_.erase(*key);
  uncapturable_.insert(*key);
  lock.unlock();
  return run_eager(inputs, key);
}

// The second replay is timed (the first may still pay for the graph's first use); the call
// after it decides.
bool InferencePlan::keeps_graph(Captured& c, ShapeState& shape) {
  if (!options_.measure_graphs || c.judged || !c.timed_end) return true;
  c.judged = true;
  c.timed_end->synchronize();
  shape.eager_end->synchronize();
  const float graph_ms = cuda::Event::elapsed_ms(*c.timed_start, *c.timed_end);
  const float eager_ms = cuda::Event::elapsed_ms(*shape.eager_start, *shape.eager_end);
  const bool keep = graph_ms < eager_ms;
  stats_.graph_timing = str_cat("replay ", graph_ms, " ms against eager ", eager_ms, " ms: ",
                                keep ? "graph kept" : "eager kept");
  if (!keep) ++stats_.graphs_dropped;
  return keep;
}

namespace {

// A copy of `src` into `dst` (same size, both contiguous) recorded into the graph being captured.
std::optional<cuda::Graph::Copy> record_copy(int device, const Tensor& dst, const Tensor& src) {
  if (dst.nbytes() == 0) return std::nullopt;
  return cuda::Graph::capture_copy(device, dst.data(), src.data(), dst.nbytes());
}

}  // namespace

std::unique_ptr<InferencePlan::Captured> InferencePlan::capture(const TensorList& inputs,
                                                                const std::vector<Layout>& outputs) {
  auto c = std::make_unique<Captured>();
  TensorList sources;  // contiguous, as the graph's copies read them
  for (const Tensor& t : inputs) {
    sources.push_back(t.contiguous());
    c->inputs.push_back(empty(t.sizes(), {t.dtype(), device_}));
  }
  for (const Layout& l : outputs) c->outputs.push_back(l.defined ? empty(l.shape, {l.dtype, device_}) : Tensor());
  c->check_flag = zeros({}, {kInt32, device_});
  c->check_host = cuda::empty_pinned({}, kInt32);
  cuda::CaptureChecks checks(c->check_flag);
  cuda::Graph g = cuda::Graph::capture(device_.index, [&] {
    zero_(c->check_flag);
    for (size_t i = 0; i < sources.size(); ++i) c->input_copies.push_back(record_copy(device_.index, c->inputs[i], sources[i]));
    const TensorList result = run_graph(c->inputs);
    EMBER_CHECK(result.size() == c->outputs.size(), Internal, "[cuda graph] the captured forward gave ",
                result.size(), " outputs, its first run ", c->outputs.size());
    for (size_t i = 0; i < result.size(); ++i) {
      EMBER_CHECK(result[i].defined() == c->outputs[i].defined() &&
                      (!result[i].defined() ||
                       (result[i].sizes() == c->outputs[i].sizes() && result[i].dtype() == c->outputs[i].dtype())),
                  Unsupported, "[cuda graph] output ", i,
                  " changed shape or dtype between runs with the same input shapes; not capturable");
      // An output that is a view is made contiguous inside the graph, then copied out.
      const Tensor src = result[i].defined() ? result[i].contiguous() : Tensor();
      c->output_copies.push_back(src.defined() ? record_copy(device_.index, c->outputs[i], src) : std::nullopt);
    }
    if (!checks.checks().empty()) copy_(c->check_host, c->check_flag, /*non_blocking=*/true);
  });  // `result` and every intermediate were freed inside the capture: their memory is the graph's
  c->graph.emplace(std::move(g));
  c->checks = checks.checks();
  return c;
}

std::optional<TensorList> InferencePlan::replay(Captured& c, const TensorList& inputs) {
  const cuda::Stream stream = cuda::Stream::current(device_.index);
  auto refused = [&](const char* what) -> std::optional<TensorList> {
    stats_.capture_failure = str_cat("[cuda graph] CUDA refused to point the graph's copy of ", what,
                                     " at a call's tensor; this input shape runs eagerly from now on");
    return std::nullopt;
  };
  // The graph's copies read this call's inputs and write its own new outputs.
  TensorList sources(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!c.input_copies[i]) continue;
    sources[i] = inputs[i].contiguous();
    if (!c.graph->set_copy(*c.input_copies[i], c.inputs[i].data(), sources[i].data())) return refused("an input");
  }
  TensorList out(c.outputs.size());
  for (size_t i = 0; i < c.outputs.size(); ++i) {
    if (!c.outputs[i].defined()) continue;
    out[i] = empty(c.outputs[i].sizes(), {c.outputs[i].dtype(), device_});
    if (c.output_copies[i] && !c.graph->set_copy(*c.output_copies[i], out[i].data(), c.output_copies[i]->src))
      return refused("an output");
  }
  const bool timed = options_.measure_graphs && ++c.replays == 2;
  if (timed) {
    c.timed_start.emplace(device_.index);
    c.timed_end.emplace(device_.index);
    c.timed_start->record(stream);
  }
  // A replay on another stream waits for the last one, which may still be using the graph's
  // memory: an event recorded now on that stream follows it. (Replays on one stream are in
  // order already; no event is recorded per replay.)
  if (c.last_stream && !(*c.last_stream == stream)) {
    cuda::Event last(device_.index, false);
    last.record(*c.last_stream);
    last.wait(stream);
  }
  c.graph->replay();
  c.last_stream = stream;
  if (timed) c.timed_end->record(stream);
  ++stats_.graph_replays;
  if (!c.checks.empty()) {
    // The inputs' checks ran on the device: wait for them, as the eager run's checks do.
    stream.synchronize();
    const int32_t failed = *static_cast<const int32_t*>(c.check_host.data());
    EMBER_CHECK(failed <= 0 || static_cast<size_t>(failed) > c.checks.size(), InvalidArgument,
                c.checks[static_cast<size_t>(failed > 0 ? failed - 1 : 0)],
                " (checked on the device while replaying the model's CUDA graph; the outputs are discarded)");
  }
  return out;
}

}  // namespace ember
