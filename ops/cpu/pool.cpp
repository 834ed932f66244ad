// max_pool2d's forward on the CPU: one pass over each output window, as the CUDA kernel
// (ops/cuda/pool.cu) does it, planes in parallel; float windows wholly inside the input eight
// at a time (max_pool_interior). The public-op form it replaces (a max over
// materialised windows, then index arithmetic in int64 tensors) was 15% of resnet18's CPU
// forward for its one pooling layer; it stays as the tests' reference (max_pool2d_reference).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "ops/pool.h"
#include "runtime/dispatch.h"
#include "runtime/parallel.h"

namespace ember {

namespace {

// Planes per parallel chunk: enough output cells that a thread is worth waking.
int64_t planes_per_chunk(int64_t cells_per_plane) { return std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(1, cells_per_plane)); }

// Outputs side by side in the interior fast path: one SSE/NEON register of floats, twice.
constexpr int kLanes = 8;

/// One tap for kLanes outputs side by side: lane u reads src[u·kStride], plane index at + u·kStride.
/// The first maximum wins and a NaN wins, as in the scalar loop; selects, which vectorise (int32
/// indices, so that they fill the same lanes as the floats).
template <int kStride>
inline void max_pool_tap(const float* src, int32_t at, float* __restrict best, int32_t* __restrict arg) {
#pragma GCC unroll 1  // kept a loop for the vectoriser (unrolled first, it was left scalar)
  for (int u = 0; u < kLanes; ++u) {
    const float v = src[u * kStride], b = best[u];
    const bool take = (v > b) | (v != v);
    best[u] = take ? v : b;
    arg[u] = take ? at + u * kStride : arg[u];
  }
}

/// Output row r's float maxima for columns [c0, c1), every one of whose windows lies inside the
/// row's columns: kLanes outputs at a time, each tap of the window read for all of them at
/// once (independent maxima the compiler vectorises, where one window after another was a
/// dependent chain of compares and mispredicted branches, 3 ns a tap). The taps go in the
/// window's row-major order with the scalar loop's rule, so ties and NaNs give the same index.
/// Returns the first column it did not do (the rest go through the scalar loop). kStride: the
/// column stride, a constant so that the strided loads vectorise.
template <int kStride>
int64_t max_pool_interior(const float* in, int64_t w, int64_t h0, int64_t h1, int64_t c0, int64_t c1,
                          const PoolParams& p, float* y, int64_t* idx) {
  int64_t c = c0;
  for (; c + kLanes <= c1; c += kLanes) {
    float best[kLanes];
    int32_t arg[kLanes];  // within the plane: the caller checks that h·w fits
    const int64_t first = c * kStride - p.padding[1];
    for (int u = 0; u < kLanes; ++u) {
      best[u] = -INFINITY;
      arg[u] = static_cast<int32_t>(h0 * w + first + u * kStride);
    }
    for (int64_t i = h0; i < h1; i += p.dilation[0])
      for (int64_t j = 0; j < p.kernel[1]; ++j) {
        const int64_t at = i * w + first + j * p.dilation[1];
        max_pool_tap<kStride>(in + at, static_cast<int32_t>(at), best, arg);
      }
    for (int u = 0; u < kLanes; ++u) {
      y[c + u] = best[u];
      idx[c + u] = arg[u];
    }
  }
  return c;
}

}  // namespace

void MaxPool2dOp::forward_cpu(const TensorList& inputs, const TensorList& outputs) {
  const Tensor x = inputs[0].contiguous();
  const Tensor& values = outputs[0];
  const Tensor& indices = outputs[1];
  const PoolParams& p = params;
  const int64_t h = x.sizes()[2], w = x.sizes()[3], oh = values.sizes()[2], ow = values.sizes()[3];
  const int64_t planes = x.sizes()[0] * x.sizes()[1];
  if (values.numel() == 0) return;
  dispatch<kFloatingSet>(x.dtype(), "max_pool2d", [&]<typename T>() {
    using A = opmath_t<T>;
    const T* in_all = x.data_ptr<T>();
    T* y_all = values.data_ptr<T>();
    int64_t* idx_all = indices.data_ptr<int64_t>();
    // The interior fast path: float, column stride 1 or 2, plane indices in 32 bits.
    const bool fast = (p.stride[1] == 1 || p.stride[1] == 2) && h * w <= INT32_MAX;
    parallel_for(0, planes, planes_per_chunk(oh * ow), [&](int64_t p0, int64_t p1) {
      for (int64_t plane = p0; plane < p1; ++plane) {
        const T* in = in_all + plane * h * w;
        T* y = y_all + plane * oh * ow;
        int64_t* idx = idx_all + plane * oh * ow;
        for (int64_t r = 0; r < oh; ++r) {
          // Windows start inside the input (ceil_mode drops the others): skip padded rows first.
          int64_t h0 = r * p.stride[0] - p.padding[0];
          while (h0 < 0) h0 += p.dilation[0];
          const int64_t h1 = std::min(r * p.stride[0] - p.padding[0] + p.dilation[0] * (p.kernel[0] - 1) + 1, h);
          // Columns whose whole window is inside the input: [in_lo, in_hi) by the fast path.
          int64_t in_lo = ow, in_hi = ow;
          if constexpr (std::is_same_v<T, float>) {
            if (fast) {
              in_lo = std::min(ow, (p.padding[1] + p.stride[1] - 1) / p.stride[1]);
              const int64_t last = w - 1 - p.dilation[1] * (p.kernel[1] - 1) + p.padding[1];  // window start <= this
              in_hi = last < 0 ? in_lo : std::clamp(last / p.stride[1] + 1, in_lo, ow);
              in_hi = p.stride[1] == 1 ? max_pool_interior<1>(in, w, h0, h1, in_lo, in_hi, p, y + r * ow, idx + r * ow)
                                       : max_pool_interior<2>(in, w, h0, h1, in_lo, in_hi, p, y + r * ow, idx + r * ow);
            }
          }
          for (int64_t c = 0; c < ow; ++c) {
            if (c == in_lo) c = in_hi;  // done by the fast path
            if (c >= ow) break;
            int64_t w0 = c * p.stride[1] - p.padding[1];
            while (w0 < 0) w0 += p.dilation[1];
            const int64_t w1 = std::min(c * p.stride[1] - p.padding[1] + p.dilation[1] * (p.kernel[1] - 1) + 1, w);
            A best = -INFINITY;
            int64_t arg = h0 * w + w0;  // a window of -inf reports its first cell inside the input
            for (int64_t i = h0; i < h1; i += p.dilation[0])
              for (int64_t j = w0; j < w1; j += p.dilation[1]) {
                const A v = static_cast<A>(in[i * w + j]);
                if (v > best || std::isnan(v)) {  // the first maximum; a NaN wins, as in PyTorch
                  best = v;
                  arg = i * w + j;
                }
              }
            y[r * ow + c] = static_cast<T>(best);
            idx[r * ow + c] = arg;
          }
        }
      }
    });
  });
}

}  // namespace ember
