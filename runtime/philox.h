// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11), and the
// mapping from (seed, offset, element index) to random values that every random op uses on
// every device. It is host/device code, so CPU and CUDA draw the same bits for the same seed.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define EMBER_HD __host__ __device__
#else
#define EMBER_HD
#endif

namespace ember::philox {

struct Block {
  uint32_t w[4];
};

EMBER_HD inline uint32_t mulhilo(uint32_t a, uint32_t b, uint32_t* hi) {
  uint64_t p = static_cast<uint64_t>(a) * b;
  *hi = static_cast<uint32_t>(p >> 32);
  return static_cast<uint32_t>(p);
}

/// Ten rounds of Philox4x32 on the counter (c0, c1, c2, c3) under the key (k0, k1), exactly as
/// Random123's philox4x32_10 (its known-answer vectors are in the tests).
EMBER_HD inline Block philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1) {
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, hi1;
    uint32_t lo0 = mulhilo(0xD2511F53u, c0, &hi0);
    uint32_t lo1 = mulhilo(0xCD9E8D57u, c2, &hi1);
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return {{c0, c1, c2, c3}};
}

/// The block at index `block` of the stream keyed by `seed`: counter (block, 0), key seed.
EMBER_HD inline Block generate(uint64_t seed, uint64_t block) {
  return philox4x32_10(static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32), 0, 0,
                       static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

// Element i of a draw that starts at block `offset` uses these words. Each function documents
// how many blocks a draw of n elements consumes, so the generator can advance its offset.

/// One 32-bit word per element: 4 elements per block.
EMBER_HD inline uint32_t word32(uint64_t seed, uint64_t offset, uint64_t i) {
  return generate(seed, offset + i / 4).w[i % 4];
}
/// One 64-bit value per element: 2 elements per block.
EMBER_HD inline uint64_t word64(uint64_t seed, uint64_t offset, uint64_t i) {
  Block b = generate(seed, offset + i / 2);
  int k = static_cast<int>(i % 2) * 2;
  return (static_cast<uint64_t>(b.w[k + 1]) << 32) | b.w[k];
}
inline constexpr uint64_t blocks_for_word32(uint64_t n) { return (n + 3) / 4; }
inline constexpr uint64_t blocks_for_word64(uint64_t n) { return (n + 1) / 2; }

/// Uniform float in [0, 1) with `bits` random mantissa bits (24 for float, 11 for half,
/// 8 for bfloat16), so rounding to the target type can never produce 1.
EMBER_HD inline float uniform_float(uint32_t w, int bits) {
  return static_cast<float>(w >> (32 - bits)) * (1.0f / static_cast<float>(1u << bits));
}
/// Uniform double in [0, 1) with 53 random bits.
EMBER_HD inline double uniform_double(uint64_t w) {
  return static_cast<double>(w >> 11) * (1.0 / 9007199254740992.0);
}

}  // namespace ember::philox
