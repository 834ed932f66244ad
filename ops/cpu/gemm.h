// The CPU GEMM of one matrix product, for CPU kernels built on it (the convolution's):
// Eigen, or its AVX2/AVX-512 build where the CPU has it (gemm_isa.h).
#pragma once

#include <cstdint>

namespace ember::cpu {

/// out (n × m, row-major, contiguous) = a · b, plus out when `accumulate`. a is n × k with element
/// strides (as0, as1), b is k × m with (bs0, bs1); each must be unit-stride along one dim with
/// rows (or columns) that do not overlap. float and double.
template <typename T>
void gemm(const T* a, int64_t n, int64_t k, int64_t as0, int64_t as1, const T* b, int64_t m, int64_t bs0,
          int64_t bs1, T* out, bool accumulate);

}  // namespace ember::cpu
