#include "serialization/checksum.h"

#include <cstring>
#include <vector>

#include "runtime/error.h"
#include "runtime/parallel.h"

namespace ember {

uint64_t content_checksum(const uint8_t* p, size_t n) {
  const size_t chunks = (n + kChecksumChunk - 1) / kChecksumChunk;
  std::vector<uint64_t> digests(chunks);
  parallel_for(0, static_cast<int64_t>(chunks), 1, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      const size_t at = static_cast<size_t>(c) * kChecksumChunk;
      digests[c] = XXH3_64bits(p + at, std::min(kChecksumChunk, n - at));
    }
  });
  return XXH3_64bits(digests.data(), digests.size() * sizeof(uint64_t));  // little-endian hosts
}

ChecksumStream::ChecksumStream() : chunk_(XXH3_createState()) {
  EMBER_CHECK(chunk_ != nullptr, OutOfMemory, "cannot allocate an XXH3 state");
  XXH3_64bits_reset(chunk_);
}

ChecksumStream::~ChecksumStream() { XXH3_freeState(chunk_); }

void ChecksumStream::finish_chunk() {
  const uint64_t d = XXH3_64bits_digest(chunk_);
  digests_.append(reinterpret_cast<const char*>(&d), sizeof d);
  XXH3_64bits_reset(chunk_);
  in_chunk_ = 0;
}

void ChecksumStream::update(const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (n > 0) {
    const size_t take = std::min(n, kChecksumChunk - in_chunk_);
    XXH3_64bits_update(chunk_, p, take);
    in_chunk_ += take;
    p += take;
    n -= take;
    if (in_chunk_ == kChecksumChunk) finish_chunk();
  }
}

uint64_t ChecksumStream::digest() {
  if (in_chunk_ > 0) finish_chunk();
  return XXH3_64bits(digests_.data(), digests_.size());
}

}  // namespace ember
