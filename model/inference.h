// The inference fast path of a loaded model: used by Model::forward in evaluation mode when no
// gradient is recorded. It runs a copy of the graph rewritten for evaluation (graph/passes.h)
// and, on CUDA, captures each input shape's forward as a CUDA graph on its second run and
// replays it from then on (one launch instead of one per kernel). The plan is rebuilt when the
// model's weights change (fine-tuning bumps their versions) or the model moves.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "graph/executor.h"
#include "graph/passes.h"
#include "runtime/cuda/cuda.h"
#include "runtime/memory_plan.h"

namespace ember {

struct InferenceOptions {
  /// Rewrite the graph for evaluation: identities removed, batch norms folded into
  /// convolutions, constant subgraphs computed once, dead nodes dropped.
  bool optimize = true;
  /// On CUDA, replay captured CUDA graphs for input shapes seen before.
  bool cuda_graphs = true;
  /// Keep a shape's graph only if its second replay took less device time than that shape's
  /// second (timed) eager run: graphs pay off where launches dominate, but a replay copies the
  /// inputs in and the outputs out, which costs more than it saves on a model with large outputs
  /// and few, long kernels. Off: capture on the second run and always replay.
  bool measure_graphs = true;
  /// Run a float32 model in float16 or bfloat16 (graph::convert_precision): weights converted
  /// once when the plan is made, float32 inputs cast on entry, outputs cast back to their
  /// declared dtypes. nullopt: as exported.
  std::optional<DType> dtype = std::nullopt;
  /// Most CUDA graphs kept (one per input shape); past it the oldest is dropped.
  size_t max_graphs = 8;
  /// Eager runs of an input shape take their intermediate tensors from one arena laid out
  /// from the second such run's lifetimes (runtime/memory_plan.h; the first runs unplanned, as
  /// libraries cache things on their first call); on CUDA, runs on the stream that recorded.
  /// The first max_graphs shapes get an arena; later ones run unplanned.
  bool plan_memory = true;
};

struct InferenceStats {
  graph::PassStats passes;
  int graphs_captured = 0;
  int64_t graph_replays = 0;
  int64_t eager_runs = 0;
  int graphs_dropped = 0;       // replays measured slower than eager runs (measure_graphs)
  std::string capture_failure;  // why the last failed capture failed ("" when none did)
  std::string graph_timing;     // the last measured replay against its eager run
  // Planned memory of eager runs (plan_memory), summed over the input shapes that have a plan.
  size_t arena_bytes = 0;        // the arenas' sizes
  size_t arena_held = 0;         // arena bytes held now, between runs (made by a run's first replay)
  bool outputs_in_arena = false; // a plan keeps the outputs in its arena too (runtime/memory_plan.h)
  size_t planned_peak = 0;       // the most bytes their recorded runs held at once
  int64_t planned_runs = 0;      // eager runs served from an arena
  int64_t planned_fallbacks = 0; // allocations of those runs that came from the allocator
  int64_t planned_recordings = 0; // eager runs recorded (the second of a shape, and any after a replay strayed)
  // The blocks alive at the peak of the largest recorded run, largest first, each named by
  // the node that made it: what an eager forward's activation memory is made of.
  std::vector<MemoryPlan::PeakBlock> peak_blocks;
};

class InferencePlan {
 public:
  InferencePlan(const graph::Graph& g, const std::vector<Tensor>& stored, Device device,
                const InferenceOptions& options);
  ~InferencePlan();
  InferencePlan(const InferencePlan&) = delete;
  InferencePlan& operator=(const InferencePlan&) = delete;

  /// True while `stored` holds the tensors the plan was made from, unchanged.
  bool current(const std::vector<Tensor>& stored) const;
  /// Runs the model (thread-safe; outputs are the caller's own tensors).
  TensorList run(const TensorList& inputs);
  InferenceStats stats() const;

 private:
  // A captured forward. It begins by copying its inputs into `inputs` and ends by copying its
  // outputs out, copies recorded into the graph and pointed at each call's tensors before the
  // replay (cuda::Graph::set_copy): one launch per call. Every other tensor the graph
  // allocates is freed inside it (CUDA reuses that memory between values).
  struct Captured {
    TensorList inputs;   // the graph reads its inputs here
    TensorList outputs;  // where the capture's output copies wrote (their first targets)
    std::vector<std::optional<cuda::Graph::Copy>> input_copies, output_copies;  // none for 0 bytes
    std::optional<cuda::Graph> graph;
    std::optional<cuda::Stream> last_stream;  // where the last replay ran
    // Checks recorded into the graph (index ranges, cuda::CaptureChecks): the code of the one
    // that failed, on the device and copied to pinned host memory by every replay.
    Tensor check_flag, check_host;
    std::vector<std::string> checks;
    std::optional<cuda::Event> timed_start, timed_end;  // the second replay, timed
    int64_t replays = 0;
    bool judged = false;
    uint64_t order = 0;
    ~Captured();
  };
  using Key = std::vector<int64_t>;  // dtype and sizes of every input
  struct Layout {
    Shape shape;
    DType dtype;
    bool defined;
  };
  struct ShapeState {
    std::vector<Layout> outputs;  // from the first (eager) run
    int64_t eager_runs = 0;
    std::optional<cuda::Event> eager_start, eager_end;  // the second eager run, timed
    int capture_out_of_memory = 0;  // captures of this shape that ran out of device memory
  };

  // An input shape's planned memory, and the stream whose runs it serves (CUDA).
  struct Planned {
    MemoryPlan plan;
    std::optional<cuda::Stream> stream;
    explicit Planned(Device d) : plan(d) {}
  };

  // `key`: key_of(inputs), computed once per run.
  TensorList run_eager(const TensorList& inputs, const std::optional<Key>& key);
  // The memory plan for this input shape on this thread's stream, or null (none planned).
  MemoryPlan* memory_plan_for(const std::optional<Key>& key);
  // The executor between the declared dtypes and the plan's (reduced precision).
  TensorList run_graph(const TensorList& inputs);
  // nullopt where CUDA refused to point the graph's copies at this call's tensors.
  std::optional<TensorList> replay(Captured& c, const TensorList& inputs);
  bool keeps_graph(Captured& c, ShapeState& shape);
  std::unique_ptr<Captured> capture(const TensorList& inputs, const std::vector<Layout>& outputs);
  std::optional<Key> key_of(const TensorList& inputs) const;

  graph::Graph graph_;  // the executor refers to it: the plan never moves
  std::vector<DType> declared_inputs_, declared_outputs_;
  std::vector<Tensor> stored_;
  std::unique_ptr<graph::Executor> executor_;
  std::vector<std::pair<const void*, uint64_t>> fingerprint_;
  Device device_;
  InferenceOptions options_;

  mutable std::mutex mutex_;
  std::map<Key, std::unique_ptr<Captured>> captured_;
  std::map<Key, ShapeState> shapes_;
  std::set<Key> uncapturable_;
  mutable std::mutex plans_mutex_;
  std::map<Key, std::unique_ptr<Planned>> planned_;  // never erased: a run may be using a plan
  uint64_t captures_made_ = 0;
  InferenceStats stats_;                 // but eager_runs:
  std::atomic<int64_t> eager_runs_{0};  // counted without the lock (eager runs run concurrently)
};

}  // namespace ember
