#include "runtime/memory_plan.h"

#include <algorithm>
#include <cstdint>
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

MemoryPlan::Outside::Outside() : previous_(active_plan) { active_plan = nullptr; }
MemoryPlan::Outside::~Outside() { active_plan = previous_; }

MemoryPlan::Site::Site(const std::string& name) : previous_(active_site) { active_site = &name; }
MemoryPlan::Site::~Site() { active_site = previous_; }

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
  if (recorded && blocks_[index].in_arena) {
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
  if (!recorded || blocks_[index].in_arena) {
    std::lock_guard<std::mutex> lock(stats_mutex_);
    ++stats_.fallbacks;
  }
  // Blocks that outlived the recorded run (outputs) are ordinary allocations in every replay,
  // unless the plan keeps them in the arena.
  return allocator_for(device_).allocate(nbytes, device_);
}

void MemoryPlan::end(bool failed) {
  if (mode_ == Run::Mode::Replay) {
    if (next_ != blocks_.size()) stray_ = true;
    if (outputs_in_arena_) {
      // This run's outputs keep its arena (until the caller frees them); the next gets its own.
      // A block the recording freed but this run still holds (an intermediate the caller kept)
      // means the run no longer frees what the recording did: record the next.
      {
        Shared::Arena& arena = *shared_->arena;
        std::lock_guard<std::mutex> lock(arena.mutex);
        for (size_t i = 0; i < blocks_.size(); ++i)
          if (blocks_[i].freed >= 0 && arena.taken[i]) stray_ = true;
      }
      shared_->arena = std::make_shared<Shared::Arena>();
      shared_->arena->taken.assign(blocks_.size(), 0);
    }
    std::lock_guard<std::mutex> lock(stats_mutex_);
    ++stats_.replays;
    if (outputs_in_arena_) stats_.arena_held = 0;
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

// The blocks the arena holds: every block freed in the recorded run, and with `outputs` the ones
// alive at its end too (their lifetime then runs past the end).
std::vector<uint32_t> MemoryPlan::arena_blocks(bool outputs) const {
  std::vector<uint32_t> in;
  for (uint32_t i = 0; i < blocks_.size(); ++i)
    if (blocks_[i].freed >= 0 || outputs) in.push_back(i);
  return in;
}

// The most bytes the arena's blocks held at once, and when: sizes as placed (`rounded`; no arena
// is smaller than that) or as asked for.
MemoryPlan::LivePeak MemoryPlan::live_peak(bool outputs, bool rounded) const {
  const size_t align = rounded ? alignment_for(device_) : 1;
  std::vector<std::pair<int64_t, int64_t>> events;  // (time, +size or -size)
  for (uint32_t i : arena_blocks(outputs)) {
    const auto size = static_cast<int64_t>(round_up(blocks_[i].size, align));
    events.emplace_back(blocks_[i].made, size);
    if (blocks_[i].freed >= 0) events.emplace_back(blocks_[i].freed, -size);
  }
  std::sort(events.begin(), events.end());
  LivePeak peak;
  int64_t live = 0;
  for (const auto& [time, delta] : events)
    if ((live += delta) > static_cast<int64_t>(peak.bytes)) peak = {static_cast<size_t>(live), time};
  return peak;
}

// Offsets for the arena's blocks. Each block is placed by the usual greedy rule for lifetime
// intervals, at the lowest offset where it overlaps no placed block alive at the same time. The
// order matters, and no one order is best: largest first leaves resnet50's arena 20% above the most its blocks hold at once, since its short
// convolution scratch blocks and long residual ones end up interleaved. So it tries largest
// first, first made first, longest lived first, then largest first with each size scaled by a
// random factor in [0.5, 1.5) (a fixed seed: the same plan every time), until an arena reaches
// that bound (live_peak) or the work budget is spent; on the inference table's models it
// reaches the bound within 50 orders. Returns the smallest arena, its offsets in `offsets`.
size_t MemoryPlan::layout(bool outputs, std::vector<size_t>& offsets) const {
  const size_t align = alignment_for(device_);
  const std::vector<uint32_t> in = arena_blocks(outputs);
  if (in.empty()) return 0;
  auto end_of = [&](uint32_t i) { return blocks_[i].end(); };
  auto size_of = [&](uint32_t i) { return round_up(blocks_[i].size, align); };
  const size_t bound = live_peak(outputs, true).bytes;

  std::vector<size_t> at(blocks_.size(), 0);
  std::vector<uint32_t> placed;
  std::vector<std::pair<size_t, size_t>> taken;  // [offset, end) of placed blocks alive with this one
  auto place = [&](const std::vector<uint32_t>& order) {
    size_t arena = 0;
    placed.clear();
    for (uint32_t i : order) {
      const size_t size = size_of(i);
      taken.clear();
      for (uint32_t j : placed)
        if (blocks_[i].made < end_of(j) && blocks_[j].made < end_of(i)) taken.emplace_back(at[j], at[j] + size_of(j));
      std::sort(taken.begin(), taken.end());
      size_t offset = 0;
      for (const auto& [start, stop] : taken) {
        if (start >= offset + size) break;  // the gap before this block fits
        offset = std::max(offset, stop);
      }
      at[i] = offset;
      arena = std::max(arena, offset + size);
      placed.push_back(i);
    }
    return arena;
  };

  // Each order costs up to n² overlap tests: about 2.5·10⁷ tests for this layout in all (the
  // plan makes at most two), at least one order and at most 259.
  const double n = static_cast<double>(in.size());
  const int orders = static_cast<int>(std::clamp(2.5e7 / (n * n), 1.0, 259.0));
  size_t best = SIZE_MAX;
  std::vector<uint32_t> order = in;
  uint64_t state = 0x9e3779b97f4a7c15ull;
  auto uniform = [&] {  // xorshift64*: [0, 1)
    state ^= state >> 12, state ^= state << 25, state ^= state >> 27;
    return static_cast<double>((state * 0x2545f4914f6cdd1dull) >> 11) * 0x1.0p-53;
  };
  std::vector<double> key(blocks_.size(), 0);
  for (int t = 0; t < orders && best > bound; ++t) {
    order = in;  // t == 1: as made (the blocks are in allocation order already)
    if (t == 0) {
      std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return blocks_[a].size > blocks_[b].size; });
    } else if (t == 2) {
      std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
        const int64_t la = end_of(a) - blocks_[a].made, lb = end_of(b) - blocks_[b].made;
        return la != lb ? la > lb : blocks_[a].size > blocks_[b].size;
      });
    } else if (t > 2) {
      for (uint32_t i : in) key[i] = static_cast<double>(blocks_[i].size) * (0.5 + uniform());
      std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return key[a] > key[b]; });
    }
    const size_t arena = place(order);
    if (arena < best) {
      best = arena;
      offsets = at;
    }
  }
  return best;
}

void MemoryPlan::make_offsets() {
  const size_t align = alignment_for(device_);
  size_t escaped = 0;
  for (const Block& b : blocks_)
    if (b.freed < 0) escaped += b.size;
  std::vector<size_t> offsets;
  size_t arena = layout(false, offsets);
  bool outputs = false;
  if (escaped > 0) {
    // The outputs in the arena too make a call's peak the arena alone, not the arena and the
    // outputs beside it (a language model's logits are made while the arena's other bytes lie
    // idle). But each call's outputs then keep their whole arena, and the next call makes
    // another: worth it only where the outputs are most of the arena.
    // (No layout with outputs when even the smallest such arena would fail the test.)
    std::vector<size_t> with_outputs;
    const size_t both = live_peak(true, true).bytes * 4 <= escaped * 5 ? layout(true, with_outputs) : SIZE_MAX;
    if (both < arena + escaped && both * 4 <= escaped * 5) {
      arena = both;
      offsets = std::move(with_outputs);
      outputs = true;
    }
  }
  outputs_in_arena_ = outputs;
  for (uint32_t i = 0; i < blocks_.size(); ++i) {
    blocks_[i].in_arena = blocks_[i].freed >= 0 || outputs;
    blocks_[i].offset = offsets.empty() ? 0 : offsets[i];
  }
  // Which earlier blocks share each block's bytes (necessarily ones freed before it is made).
  size_t count = 0;
  for (uint32_t i = 0; i < blocks_.size(); ++i) {
    Block& b = blocks_[i];
    b.shares.clear();
    if (!b.in_arena) continue;
    ++count;
    const size_t b_end = b.offset + round_up(b.size, align);
    for (uint32_t j = 0; j < i; ++j) {
      const Block& o = blocks_[j];
      if (o.in_arena && o.offset < b_end && b.offset < o.offset + round_up(o.size, align)) b.shares.push_back(j);
    }
  }
  // The most bytes the arena's blocks held at once (the arena is at least this large), and which.
  const LivePeak peak = live_peak(outputs, false);
  std::vector<PeakBlock> at_peak;
  for (const Block& b : blocks_)
    if (b.in_arena && b.made <= peak.time && peak.time < b.end()) at_peak.push_back({b.size, b.site});
  std::stable_sort(at_peak.begin(), at_peak.end(), [](const PeakBlock& a, const PeakBlock& b) { return a.bytes > b.bytes; });
  std::lock_guard<std::mutex> lock(stats_mutex_);
  stats_.peak_blocks = std::move(at_peak);
  stats_.arena_bytes = arena;
  stats_.recorded_peak = peak.bytes;
  stats_.blocks = count;
  stats_.escaped_bytes = escaped;
  stats_.outputs_in_arena = outputs;
}

}  // namespace ember
