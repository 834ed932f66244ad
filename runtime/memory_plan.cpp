#include "runtime/memory_plan.h"

#include <algorithm>
#include <exception>

#include "runtime/allocator.h"
#include "runtime/error.h"

namespace ember {

namespace {

thread_local MemoryPlan* active_plan = nullptr;
thread_local const std::string* active_site = nullptr;

// Offsets in the arena are multiples of this: a cache line on the CPU, and what cudaMalloc
// promises (and the vectorised CUDA kernels expect) on a GPU.
size_t alignment_for(Device device) { return device.is_cpu() ? kCpuAlignment : 256; }

size_t round_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

}  // namespace

// What the blocks' deleters reach: they may run on any thread, after the Run, after the plan.
struct MemoryPlan::Shared {
  // The run being recorded: the event clock and when each block was made and freed.
  struct Recording {
    std::mutex mutex;
    bool open = true;
    int64_t clock = 0;
    std::vector<size_t> sizes;
    std::vector<int64_t> made, freed;
    std::vector<std::string> sites;
  };
  // One arena and which of its blocks are taken; kept alive by its blocks when the plan moves on.
  struct Arena {
    std::shared_ptr<void> memory;
    std::mutex mutex;
    std::vector<uint8_t> taken;
    size_t live = 0;
  };
  std::shared_ptr<Recording> recording;
  std::shared_ptr<Arena> arena;
};

MemoryPlan::MemoryPlan(Device device) : device_(device), shared_(std::make_shared<Shared>()) {}

MemoryPlan::~MemoryPlan() = default;

MemoryPlan::Stats MemoryPlan::stats() const {
  std::lock_guard<std::mutex> lock(stats_mutex_);
  return stats_;
}

MemoryPlan::Site::Site(const std::string& name) : previous_(active_site) { active_site = &name; }
MemoryPlan::Site::~Site() { active_site = previous_; }

std::vector<MemoryPlan::PeakBlock> MemoryPlan::peak_blocks() const {
  std::lock_guard<std::mutex> lock(stats_mutex_);
  return peak_blocks_;
}

MemoryPlan::Run::Run(MemoryPlan& plan) : plan_(plan), previous_(active_plan) {
  if (!plan.busy_.try_lock()) return;  // another run uses the plan: this one allocates as usual
  mode_ = plan.planned_ && !plan.stray_ ? Mode::Replay : Mode::Record;
  if (mode_ == Mode::Replay) {
    std::lock_guard<std::mutex> lock(plan.shared_->arena->mutex);
    if (plan.shared_->arena->live > 0) mode_ = Mode::Record;  // a block of the last replay is still held
  }
  try {
    plan.begin(mode_);
  } catch (const Error& e) {
    // No room for the arena: this run allocates as usual (it may fit where one block does not).
    plan.busy_.unlock();
    if (e.code() != ErrorCode::OutOfMemory) throw;
    mode_ = Mode::Idle;
    return;
  }
  active_plan = &plan;
  failures_ = std::uncaught_exceptions();
}

MemoryPlan::Run::~Run() {
  if (mode_ == Mode::Idle) return;
  active_plan = previous_;
  // A run that ended in an exception (out of memory, a shape error) proves nothing about the
  // next: its recording is dropped, and a replay's arena is kept.
  plan_.end(std::uncaught_exceptions() > failures_);
  plan_.busy_.unlock();
}

std::shared_ptr<void> MemoryPlan::allocate_planned(size_t nbytes, Device device) {
  MemoryPlan* plan = active_plan;
  if (!plan || nbytes == 0 || plan->device_ != device) return nullptr;
  return plan->allocate(nbytes);
}

void MemoryPlan::begin(Run::Mode mode) {
  next_ = 0;
  mode_ = mode;
  if (mode == Run::Mode::Record) {
    shared_->recording = std::make_shared<Shared::Recording>();
    return;
  }
  // The first replay after a recording makes the arena.
  Shared::Arena& arena = *shared_->arena;
  if (!arena.memory && stats_.arena_bytes > 0) {
    arena.memory = allocator_for(device_).allocate(stats_.arena_bytes, device_);
    std::lock_guard<std::mutex> lock(stats_mutex_);
    stats_.arena_held = stats_.arena_bytes;
  }
}

std::shared_ptr<void> MemoryPlan::allocate(size_t nbytes) {
  const size_t index = next_++;
  if (mode_ == Run::Mode::Record) {
    std::shared_ptr<void> memory = allocator_for(device_).allocate(nbytes, device_);
    std::shared_ptr<Shared::Recording> rec = shared_->recording;
    {
      std::lock_guard<std::mutex> lock(rec->mutex);
      rec->sizes.push_back(nbytes);
      rec->made.push_back(++rec->clock);
      rec->freed.push_back(-1);
      rec->sites.push_back(active_site ? *active_site : std::string());
    }
    void* data = memory.get();
    return std::shared_ptr<void>(data, [rec, index, memory](void*) mutable {
      {
        std::lock_guard<std::mutex> lock(rec->mutex);
        if (rec->open) rec->freed[index] = ++rec->clock;
      }
      memory.reset();
    });
  }
  // Replay: the recorded block, if this allocation is the recorded one and its bytes are free.
  const bool recorded = !stray_ && index < blocks_.size() && blocks_[index].size == nbytes;
  if (!recorded) stray_ = true;
  if (recorded && blocks_[index].freed >= 0) {
    std::shared_ptr<Shared::Arena> arena = shared_->arena;
    const Block& b = blocks_[index];
    bool free = true;
    {
      std::lock_guard<std::mutex> lock(arena->mutex);
      free = !arena->taken[index];
      for (uint32_t other : b.shares) free = free && !arena->taken[other];
      if (free) {
        arena->taken[index] = 1;
        ++arena->live;
      }
    }
    if (free) {
      void* data = static_cast<char*>(arena->memory.get()) + b.offset;
      return std::shared_ptr<void>(data, [arena, index](void*) {
        std::lock_guard<std::mutex> lock(arena->mutex);
        arena->taken[index] = 0;
        --arena->live;
      });
    }
    stray_ = true;  // bytes still taken: the run no longer frees what the recording freed
  }
  if (!recorded || blocks_[index].freed >= 0) {
    std::lock_guard<std::mutex> lock(stats_mutex_);
    ++stats_.fallbacks;
  }
  // Blocks that outlived the recorded run (outputs) are ordinary allocations in every replay.
  return allocator_for(device_).allocate(nbytes, device_);
}

void MemoryPlan::end(bool failed) {
  if (mode_ == Run::Mode::Replay) {
    if (next_ != blocks_.size()) stray_ = true;
    std::lock_guard<std::mutex> lock(stats_mutex_);
    ++stats_.replays;
    return;
  }
  std::shared_ptr<Shared::Recording> rec = shared_->recording;
  std::vector<Block> blocks;
  {
    std::lock_guard<std::mutex> lock(rec->mutex);
    rec->open = false;
    blocks.resize(rec->sizes.size());
    for (size_t i = 0; i < blocks.size(); ++i) {
      blocks[i].size = rec->sizes[i];
      blocks[i].made = rec->made[i];
      blocks[i].freed = rec->freed[i];
      blocks[i].site = std::move(rec->sites[i]);
    }
  }
  shared_->recording.reset();
  if (failed) return;  // keep the previous plan, if any
  blocks_ = std::move(blocks);
  make_offsets();
  // A new arena; the old one, if any block of it is still held, lives on with that block.
  shared_->arena = std::make_shared<Shared::Arena>();
  shared_->arena->taken.assign(blocks_.size(), 0);
  planned_ = true;
  stray_ = false;
  std::lock_guard<std::mutex> lock(stats_mutex_);
  ++stats_.recordings;
  stats_.arena_held = 0;  // the old arena goes (with its last block); the next replay makes one
}

// Offsets by the usual greedy rule for lifetime intervals: the largest blocks first, each at the
// lowest offset where it overlaps no placed block alive at the same time.
void MemoryPlan::make_offsets() {
  const size_t align = alignment_for(device_);
  std::vector<uint32_t> order;
  size_t escaped = 0;
  for (uint32_t i = 0; i < blocks_.size(); ++i) {
    if (blocks_[i].freed >= 0) order.push_back(i);
    else escaped += blocks_[i].size;
  }
  std::stable_sort(order.begin(), order.end(),
                   [&](uint32_t a, uint32_t b) { return blocks_[a].size > blocks_[b].size; });
  auto overlap_in_time = [&](const Block& a, const Block& b) { return a.made < b.freed && b.made < a.freed; };
  std::vector<uint32_t> placed;
  size_t arena = 0;
  std::vector<std::pair<size_t, size_t>> taken;  // [offset, end) of placed blocks alive with this one
  for (uint32_t i : order) {
    Block& b = blocks_[i];
    const size_t size = round_up(b.size, align);
    taken.clear();
    for (uint32_t j : placed)
      if (overlap_in_time(b, blocks_[j])) taken.emplace_back(blocks_[j].offset, blocks_[j].offset + round_up(blocks_[j].size, align));
    std::sort(taken.begin(), taken.end());
    size_t offset = 0;
    for (const auto& [start, stop] : taken) {
      if (start >= offset + size) break;  // the gap before this block fits
      offset = std::max(offset, stop);
    }
    b.offset = offset;
    arena = std::max(arena, offset + size);
    placed.push_back(i);
  }
  // Which earlier blocks share each block's bytes (necessarily ones it outlives in the recording).
  for (uint32_t i = 0; i < blocks_.size(); ++i) {
    Block& b = blocks_[i];
    b.shares.clear();
    if (b.freed < 0) continue;
    const size_t b_end = b.offset + round_up(b.size, align);
    for (uint32_t j = 0; j < i; ++j) {
      const Block& o = blocks_[j];
      if (o.freed >= 0 && o.offset < b_end && b.offset < o.offset + round_up(o.size, align)) b.shares.push_back(j);
    }
  }
  // The most bytes the planned blocks held at once (the arena is at least this large).
  std::vector<std::pair<int64_t, int64_t>> events;  // (time, +size or -size)
  for (const Block& b : blocks_)
    if (b.freed >= 0) {
      events.emplace_back(b.made, static_cast<int64_t>(b.size));
      events.emplace_back(b.freed, -static_cast<int64_t>(b.size));
    }
  std::sort(events.begin(), events.end());
  int64_t live = 0, peak = 0, peak_time = -1;
  for (const auto& [time, delta] : events)
    if ((live += delta) > peak) peak = live, peak_time = time;
  std::vector<PeakBlock> at_peak;
  for (const Block& b : blocks_)
    if (b.freed >= 0 && b.made <= peak_time && peak_time < b.freed) at_peak.push_back({b.size, b.site});
  std::stable_sort(at_peak.begin(), at_peak.end(), [](const PeakBlock& a, const PeakBlock& b) { return a.bytes > b.bytes; });
  std::lock_guard<std::mutex> lock(stats_mutex_);
  peak_blocks_ = std::move(at_peak);
  stats_.arena_bytes = arena;
  stats_.recorded_peak = static_cast<size_t>(peak);
  stats_.blocks = order.size();
  stats_.escaped_bytes = escaped;
}

}  // namespace ember
