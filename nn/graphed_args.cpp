// fused::GraphedArgs (nn/fused_step.h): the fused optimizer steps' arguments for a captured
// training step, in pinned host slots written in turn and copied to the device before each launch.
#include <algorithm>
#include <optional>

#include "nn/fused_step.h"
#include "ops/copy.h"
#include "ops/creation.h"
#include "runtime/cuda/cuda.h"
#include "runtime/error.h"

namespace ember::nn::fused {

namespace {
thread_local GraphedArgs* t_current = nullptr;
}  // namespace

struct GraphedArgs::Impl {
  int device;
  Tensor on_device;   // what the captured kernels read
  Tensor host[2];     // pinned, written in turn
  std::optional<cuda::Event> copied[2];  // recorded after each buffer's last upload
  int turn = 0;       // the buffer being written
};

GraphedArgs::GraphedArgs(size_t launches, int device)
    : impl_(std::make_unique<Impl>()), capacity_(std::max<size_t>(launches, 1)) {
  const int64_t bytes = static_cast<int64_t>(capacity_ * kSlotBytes);
  impl_->device = device;
  impl_->on_device = empty({bytes}, {kUInt8, Device::cuda(device)});
  for (Tensor& h : impl_->host) h = cuda::empty_pinned({bytes}, kUInt8);
}

GraphedArgs::~GraphedArgs() {
  // An upload may still be reading a host buffer.
  for (auto& e : impl_->copied) {
    try {
      if (e) e->synchronize();
    } catch (...) {
    }
  }
}

GraphedArgs::Scope::Scope(GraphedArgs& args, Mode mode) : previous_(t_current) {
  args.mode_ = mode;
  args.next_ = 0;
  if (mode == Mode::Capture) {
    args.slots_.clear();
  } else {
    Impl& i = *args.impl_;
    i.turn ^= 1;
    if (i.copied[i.turn]) i.copied[i.turn]->synchronize();
  }
  t_current = &args;
}

GraphedArgs::Scope::~Scope() { t_current = previous_; }

GraphedArgs* GraphedArgs::current() { return t_current; }

void* GraphedArgs::next(size_t bytes, int64_t total) {
  EMBER_CHECK(bytes <= kSlotBytes, Internal, "[graph step] ", bytes, " bytes of kernel arguments, over ", kSlotBytes);
  const size_t i = next_++;
  if (mode_ == Mode::Capture) {
    EMBER_CHECK(i < capacity_, Internal, "[graph step] the optimizer's update made more than ", capacity_,
                " fused launches");
    slots_.push_back({bytes, total});
  } else {
    EMBER_CHECK(i < slots_.size() && slots_[i].bytes == bytes && slots_[i].total == total, Internal,
                "[graph step] the optimizer's update differs from the one captured (launch ", i, " of ",
                slots_.size(), "): not replayable");
  }
  return static_cast<uint8_t*>(impl_->host[impl_->turn].data()) + i * kSlotBytes;
}

const void* GraphedArgs::device_slot() const {
  return static_cast<const uint8_t*>(impl_->on_device.data()) + (next_ - 1) * kSlotBytes;
}

void GraphedArgs::upload() {
  Impl& i = *impl_;
  const int64_t bytes = static_cast<int64_t>(std::max<size_t>(slots_.size(), 1) * kSlotBytes);
  // A pinned source: the copy is queued, not waited for (copied[turn] says when it is done).
  copy_(i.on_device.slice(0, 0, bytes), i.host[i.turn].slice(0, 0, bytes), /*non_blocking=*/true);
  if (!i.copied[i.turn]) i.copied[i.turn].emplace(i.device, /*timing=*/false);
  i.copied[i.turn]->record();
}

}  // namespace ember::nn::fused
