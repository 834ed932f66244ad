// Planned memory for a computation repeated with the same shapes (a loaded model's forward at
// fixed input shapes). A run is recorded: every allocation the calling thread makes on the
// plan's device, its size, and when it was made and freed. From those lifetimes the plan gives
// each block an offset in one arena, so that blocks alive at the same time never share a byte
// and the arena is as large as the most memory the run held at once, or close to it (layout()
// tries several orders). Later runs take their allocations, in the same order, from the arena:
// no allocator call, no fragmentation. The blocks that outlived the recorded run (its outputs)
// come from the allocator in every run, beside the arena. Where they are most of the memory
// (a language model's logits), they are laid out in the arena too. Then each run's outputs
// keep that run's arena, and the next run makes a new one.
//
// A replay never trusts the recording blindly: a block is handed its arena bytes only if every
// block that shares them has been freed by then, and only if its size is the recorded one; any
// other allocation — a different size, bytes still taken — comes from the device's allocator as
// usual, and a replay that strayed from the recording marks the plan for recording again.
// Memory is never handed out twice.
//
// One run at a time uses a plan (a run that finds it busy allocates as usual). On CUDA the arena
// is reused in stream order: the caller runs every planned run on one stream (model/inference.cpp
// plans only the stream that recorded).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/device.h"

namespace ember {

class MemoryPlan {
 public:
  /// One block of the recorded run: its bytes and the site that allocated it ("" when unnamed).
  struct PeakBlock {
    size_t bytes = 0;
    std::string site;
  };

  /// What the plan knows and did (for `ember bench` and InferenceStats).
  struct Stats {
    size_t arena_bytes = 0;       // the arena's size (0 before the first replay)
    size_t arena_held = 0;        // bytes of arena the plan holds now (made at a replay, kept for the next)
    size_t recorded_peak = 0;     // the most bytes the recorded run's planned blocks held at once
    size_t blocks = 0;            // planned blocks per run
    size_t escaped_bytes = 0;     // bytes of blocks alive when the recorded run ended (outputs)
    bool outputs_in_arena = false;  // those are in the arena too, which each run's outputs then keep
    int64_t recordings = 0;       // runs recorded (a replay that strays is recorded again)
    int64_t replays = 0;          // runs served from the arena
    int64_t fallbacks = 0;        // allocations of replays that came from the allocator instead
    // The arena's blocks alive at the recorded run's peak, largest first (their bytes sum to
    // recorded_peak), each named by its Site; empty before a recording.
    std::vector<PeakBlock> peak_blocks;
  };

  explicit MemoryPlan(Device device);
  ~MemoryPlan();
  MemoryPlan(const MemoryPlan&) = delete;
  MemoryPlan& operator=(const MemoryPlan&) = delete;

  /// While a Run lives, the thread that made it allocates on the plan's device through the plan:
  /// recording (the first run, or after a replay strayed) or served from the arena. A Run of a
  /// plan already in use by another Run does nothing.
  class Run {
   public:
    explicit Run(MemoryPlan& plan);
    ~Run();
    Run(const Run&) = delete;
    Run& operator=(const Run&) = delete;
    /// True when this run is served from the arena (false: recording, or the plan was busy).
    bool replaying() const { return mode_ == Mode::Replay; }

   private:
    enum class Mode { Idle, Record, Replay };
    MemoryPlan& plan_;
    Mode mode_ = Mode::Idle;
    MemoryPlan* previous_ = nullptr;  // a plan of an enclosing Run on this thread
    int failures_ = 0;                // std::uncaught_exceptions() when the run began
    friend class MemoryPlan;
  };

  Stats stats() const;
  Device device() const { return device_; }

  /// Names what allocates on this thread while it lives (a graph executor names each node), so
  /// that a recording can tell which blocks make its peak. Nests; costs one pointer store.
  class Site {
   public:
    explicit Site(const std::string& name);
    ~Site();
    Site(const Site&) = delete;
    Site& operator=(const Site&) = delete;

   private:
    const std::string* previous_;
  };

  /// While it lives, this thread's allocations bypass any active Run: for memory held past the
  /// run on purpose (a library's workspace kept for later calls), which a recording would take
  /// for an output and a replay would not ask for again.
  class Outside {
   public:
    Outside();
    ~Outside();
    Outside(const Outside&) = delete;
    Outside& operator=(const Outside&) = delete;

   private:
    MemoryPlan* previous_;
  };


  /// The allocation `nbytes` on `device` of this thread's active Run, or null when there is none
  /// (or the Run is for another device): then the device's allocator serves it. Used by
  /// allocate_storage.
  static std::shared_ptr<void> allocate_planned(size_t nbytes, Device device);

 private:
  struct Block {
    size_t size = 0;
    int64_t made = 0, freed = -1;  // event times in the recorded run; -1: alive at its end
    std::string site;              // what allocated it (Site)
    bool in_arena = false;         // has bytes in the arena (freed in the recorded run, or outputs_in_arena_)
    int64_t end() const { return freed >= 0 ? freed : INT64_MAX; }  // an output's lifetime runs on
    size_t offset = 0;
    std::vector<uint32_t> shares;  // earlier blocks whose bytes overlap this one's
  };
  struct Shared;  // state the blocks' deleters reach after the plan is gone

  std::shared_ptr<void> allocate(size_t nbytes);
  void begin(Run::Mode mode);
  void end(bool failed);
  void make_offsets();
  std::vector<uint32_t> arena_blocks(bool outputs) const;
  struct LivePeak {
    size_t bytes = 0;
    int64_t time = -1;
  };
  LivePeak live_peak(bool outputs, bool rounded) const;
  size_t layout(bool outputs, std::vector<size_t>& offsets) const;

  Device device_;
  std::mutex busy_;  // held by the Run that uses the plan
  std::shared_ptr<Shared> shared_;
  std::vector<Block> blocks_;
  bool planned_ = false;   // blocks_ hold a complete recording with offsets
  bool stray_ = false;     // a replay left the recording: record the next run
  bool outputs_in_arena_ = false;  // the outputs have arena bytes: each replay makes a new arena
  Run::Mode mode_ = Run::Mode::Idle;  // of the current run
  size_t next_ = 0;        // the next allocation's index in the current run
  Stats stats_;
  mutable std::mutex stats_mutex_;
};

}  // namespace ember
