#include "model/upload.h"

#include <cstring>
#include <mutex>
#include <optional>

#include "ops/creation.h"
#include "runtime/cuda/cuda.h"
#include "runtime/cuda_hooks.h"
#include "runtime/parallel.h"

namespace ember {

namespace {

constexpr size_t kHalf = size_t{8} << 20;  // bytes per staging half
constexpr size_t kAlign = 256;

void parallel_memcpy(uint8_t* dst, const uint8_t* src, size_t n) {
  constexpr int64_t kPiece = int64_t{1} << 20;
  const auto pieces = static_cast<int64_t>((n + kPiece - 1) / kPiece);
  parallel_for(0, pieces, 1, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      const size_t at = static_cast<size_t>(p) * kPiece;
      std::memcpy(dst + at, src + at, std::min<size_t>(kPiece, n - at));
    }
  });
}

// The staging buffer, made on first use and kept for the process (never freed: freeing pinned
// memory after the CUDA runtime has shut down at exit would fail). Pinning costs about as much
// as the copies it speeds up, so a process that loads models pays for it once.
const Tensor& staging_buffer() {
  static const Tensor* buffer = new Tensor(cuda::empty_pinned({static_cast<int64_t>(2 * kHalf)}, kUInt8));
  return *buffer;
}

std::mutex& staging_mutex() {
  static std::mutex m;
  return m;
}

}  // namespace

void upload_to_cuda(std::vector<Tensor>& tensors, Device device) {
  std::lock_guard<std::mutex> lock(staging_mutex());  // one upload at a time uses the buffer
  const Tensor& staging = staging_buffer();
  uint8_t* halves[2] = {staging.data_ptr<uint8_t>(), staging.data_ptr<uint8_t>() + kHalf};
  std::optional<cuda::Event> in_flight[2];  // the last copy out of each half
  int half = 0;
  size_t fill = 0;
  auto next_half = [&] {
    in_flight[half].emplace(device.index, false);
    in_flight[half]->record();
    half ^= 1;
    fill = 0;
    if (in_flight[half]) in_flight[half]->synchronize();  // its previous copies are done
  };
  for (Tensor& t : tensors) {
    if (!t.defined()) continue;
    Tensor src = t.contiguous();
    Tensor dst = empty(src.sizes(), {src.dtype(), device});
    const auto* from = static_cast<const uint8_t*>(src.data());
    auto* to = static_cast<uint8_t*>(dst.data());
    const size_t n = src.nbytes();
    for (size_t done = 0; done < n;) {
      if (fill == kHalf) next_half();
      const size_t piece = std::min(n - done, kHalf - fill);
      parallel_memcpy(halves[half] + fill, from + done, piece);
      cuda_hooks().copy_bytes(to + done, device, halves[half] + fill, Device::cpu(), piece, /*non_blocking=*/true,
                              nullptr);
      done += piece;
      fill = std::min(kHalf, (fill + piece + kAlign - 1) / kAlign * kAlign);
    }
    t = dst;
  }
  cuda::synchronize(device.index);  // the staging buffer is free for the next upload
}

}  // namespace ember
