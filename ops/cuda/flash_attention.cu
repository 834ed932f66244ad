// The fused attention kernels (FlashAttention-2's scheme, written for ember): for half and
// bfloat16 inputs with head dims 64 and 128. Each block takes 64 query rows (16 per warp),
// streams 64-row key/value tiles through shared memory with asynchronous copies (the next tile
// loads while the current one is used), keeps a running row maximum and sum (an online
// softmax) and never writes the L×S scores: memory is O(L + S) per head.
//
// Backward recomputes the probabilities from the saved log-sum-exp in two kernels, one over
// query blocks (dQ) and one over key/value blocks (dK, dV, summed over the query heads of a
// grouped-query head inside the block), so every gradient is written once, without atomics:
// the results are deterministic. On Hopper, head dim 64 runs the wgmma forms of the same
// kernels instead (flash_attention_sm90*.cu).
#include <cmath>
#include <mutex>
#include <set>
#include <utility>

#include "ops/attention.h"
#include "ops/creation.h"
#include "ops/cuda/flash_attention_sm90.h"
#include "ops/cuda/flash_mma.cuh"
#include "runtime/cuda/runtime.h"
#include "runtime/error.h"

namespace ember {

namespace {

using flash::copy_async16;
using flash::copy_async4;
using flash::copy_async_commit;
using flash::copy_async_wait;
using flash::swizzled;

constexpr int kTile = 64;  // rows of a query or key/value tile
constexpr int kThreads = 128;
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

/// A [B, H, rows, D] operand with a contiguous last dim; strides in elements.
struct Operand {
  const void* ptr = nullptr;
  int64_t batch = 0, head = 0, row = 0;
};

struct Params {
  Operand q, k, v, o, dout;
  float* lse = nullptr;    // [B, H, L], natural log of Σ exp(scaled scores)
  float* delta = nullptr;  // [B, H, L], Σ dO·O per row (backward)
  void* dq = nullptr;      // contiguous [B, H, L, D]
  void* dk = nullptr;      // contiguous [B, Hkv, S, D]
  void* dv = nullptr;
  int heads = 0, kv_heads = 0, L = 0, S = 0;
  float scale = 1, scale_log2 = kLog2e;
  bool causal = false;
};

template <typename T>
__device__ __forceinline__ const T* row_ptr(const Operand& t, int b, int h, int row) {
  return static_cast<const T*>(t.ptr) + b * t.batch + h * t.head + int64_t{row} * t.row;
}

/// Starts copying rows [0, valid) of a 64 × D tile (zeros past `valid`) into shared memory.
template <int D, typename T>
__device__ __forceinline__ void load_tile(T* tile, const T* src, int64_t row_stride, int valid, int tid) {
  constexpr int kChunks = D / 8;
#pragma unroll
  for (int i = tid; i < kTile * kChunks; i += kThreads) {
    const int r = i / kChunks, c = (i % kChunks) * 8;
    const bool ok = r < valid;
    copy_async16(tile + swizzled<D>(r, c), ok ? src + r * row_stride + c : src, ok ? 16 : 0);
  }
}

/// Starts copying 64 floats of a per-row statistic (zeros past `valid`).
__device__ __forceinline__ void load_row_stats(float* dst, const float* src, int valid, int tid) {
  if (tid < kTile) copy_async4(dst + tid, tid < valid ? src + tid : src, tid < valid ? 4 : 0);
}

/// Stores a warp's 16 × D float accumulator rows (row0 + g, row0 + g + 8) as T, times `scale`.
template <int D, typename T>
__device__ __forceinline__ void store_rows(T* dst, int64_t row_stride, int row0, int valid, const float (&acc)[D / 8][4],
                                           float scale0, float scale1, int lane) {
  const int g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int r = row0 + g + half * 8;
    if (r >= valid) continue;
    const float s = half ? scale1 : scale0;
    T* out = dst + r * row_stride;
#pragma unroll
    for (int dt = 0; dt < D / 8; ++dt)
      *reinterpret_cast<uint32_t*>(out + dt * 8 + 2 * t) =
          flash::pack2<T>(acc[dt][2 * half] * s, acc[dt][2 * half + 1] * s);
  }
}

// ---------------------------------------------------------------------------------------------
// Forward.

template <int D, typename T>
__global__ void __launch_bounds__(kThreads) forward_kernel(Params p) {
  extern __shared__ __align__(128) unsigned char smem[];
  T* q_tile = reinterpret_cast<T*>(smem);
  T* k_tiles = q_tile + kTile * D;
  T* v_tiles = k_tiles + 2 * kTile * D;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;
  const int q_block = gridDim.x - 1 - blockIdx.x;  // causal: the longest blocks start first
  const int b = blockIdx.y / p.heads, h = blockIdx.y % p.heads, hk = h / (p.heads / p.kv_heads);
  const int q0 = q_block * kTile;
  const T* k = row_ptr<T>(p.k, b, hk, 0);
  const T* v = row_ptr<T>(p.v, b, hk, 0);

  int n_tiles = (p.S + kTile - 1) / kTile;
  if (p.causal) n_tiles = min(n_tiles, q_block + 1);
  load_tile<D>(q_tile, row_ptr<T>(p.q, b, h, q0), p.q.row, p.L - q0, tid);
  load_tile<D>(k_tiles, k, p.k.row, p.S, tid);
  load_tile<D>(v_tiles, v, p.v.row, p.S, tid);
  copy_async_commit();
  copy_async_wait<0>();
  __syncthreads();

  uint32_t qf[D / 16][4];
#pragma unroll
  for (int ks = 0; ks < D / 16; ++ks) flash::load_a<D>(qf[ks], q_tile, warp * 16, ks * 16, lane);
  float o[D / 8][4] = {};
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0, 0};
  const int row = q0 + warp * 16 + g;  // this thread's rows: row and row + 8

  for (int j = 0; j < n_tiles; ++j) {
    const int buf = j & 1;
    if (j + 1 < n_tiles) {
      const int c1 = (j + 1) * kTile;
      load_tile<D>(k_tiles + (buf ^ 1) * kTile * D, k + c1 * p.k.row, p.k.row, p.S - c1, tid);
      load_tile<D>(v_tiles + (buf ^ 1) * kTile * D, v + c1 * p.v.row, p.v.row, p.S - c1, tid);
    }
    copy_async_commit();
    const T* kt = k_tiles + buf * kTile * D;
    const T* vt = v_tiles + buf * kTile * D;

    float s[8][4] = {};
    flash::gemm_frags_bt<D, 8>(s, qf, kt, lane);
    const int c0 = j * kTile;
    const bool masked = c0 + kTile > p.S || (p.causal && c0 + kTile - 1 > q0 + warp * 16);
#pragma unroll
    for (int nt = 0; nt < 8; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        float x = s[nt][e] * p.scale_log2;
        if (masked) {
          const int col = c0 + nt * 8 + 2 * t + (e & 1), r = row + (e >> 1) * 8;
          if (col >= p.S || (p.causal && col > r)) x = -INFINITY;
        }
        s[nt][e] = x;
      }
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      float mx = -INFINITY;
#pragma unroll
      for (int nt = 0; nt < 8; ++nt) mx = fmaxf(mx, fmaxf(s[nt][2 * half], s[nt][2 * half + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float m_new = fmaxf(m[half], mx);
      const float base = m_new == -INFINITY ? 0.f : m_new;  // a row with nothing visible yet
      const float alpha = exp2f(m[half] - base);
      m[half] = m_new;
      float sum = 0;
#pragma unroll
      for (int nt = 0; nt < 8; ++nt) {
        s[nt][2 * half] = exp2f(s[nt][2 * half] - base);
        s[nt][2 * half + 1] = exp2f(s[nt][2 * half + 1] - base);
        sum += s[nt][2 * half] + s[nt][2 * half + 1];
      }
      l[half] = l[half] * alpha + sum;
#pragma unroll
      for (int dt = 0; dt < D / 8; ++dt) {
        o[dt][2 * half] *= alpha;
        o[dt][2 * half + 1] *= alpha;
      }
    }
    flash::gemm_p_b<D>(o, s, vt, lane);
    copy_async_wait<0>();
    __syncthreads();
  }

  float inv[2];
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    l[half] += __shfl_xor_sync(0xffffffffu, l[half], 1);
    l[half] += __shfl_xor_sync(0xffffffffu, l[half], 2);
    inv[half] = l[half] > 0 ? 1.f / l[half] : 0.f;
    const int r = row + half * 8;
    if (t == 0 && r < p.L)
      p.lse[int64_t{blockIdx.y} * p.L + r] = l[half] > 0 ? (m[half] + log2f(l[half])) * kLn2 : -INFINITY;
  }
  T* out = const_cast<T*>(row_ptr<T>(p.o, b, h, 0));
  store_rows<D>(out, p.o.row, q0 + warp * 16, p.L, o, inv[0], inv[1], lane);
}

// ---------------------------------------------------------------------------------------------
// Backward.

/// delta[row] = Σ_d dO[row, d] · O[row, d], one warp per row.
template <int D, typename T>
__global__ void __launch_bounds__(kThreads) delta_kernel(Params p, int64_t rows) {
  const int64_t i = int64_t{blockIdx.x} * (kThreads / 32) + (threadIdx.x >> 5);
  if (i >= rows) return;
  const int lane = threadIdx.x & 31;
  const int r = static_cast<int>(i % p.L), bh = static_cast<int>(i / p.L);
  const int b = bh / p.heads, h = bh % p.heads;
  const T* o = row_ptr<T>(p.o, b, h, r);
  const T* d = row_ptr<T>(p.dout, b, h, r);
  float acc = 0;
  for (int c = lane; c < D; c += 32) acc += static_cast<float>(o[c]) * static_cast<float>(d[c]);
  for (int off = 16; off > 0; off >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, off);
  if (lane == 0) p.delta[i] = acc;
}

/// dQ for 64 query rows: S = Q·Kᵀ, P = exp(S·scale − lse), dP = dO·Vᵀ, dS = P ⊙ (dP − delta),
/// dQ = scale · dS·K over every key/value tile the rows see.
template <int D, typename T>
__global__ void __launch_bounds__(kThreads) dq_kernel(Params p) {
  extern __shared__ __align__(128) unsigned char smem[];
  T* q_tile = reinterpret_cast<T*>(smem);
  T* do_tile = q_tile + kTile * D;
  T* k_tiles = do_tile + kTile * D;
  T* v_tiles = k_tiles + 2 * kTile * D;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;
  const int q_block = gridDim.x - 1 - blockIdx.x;
  const int b = blockIdx.y / p.heads, h = blockIdx.y % p.heads, hk = h / (p.heads / p.kv_heads);
  const int q0 = q_block * kTile;
  const T* k = row_ptr<T>(p.k, b, hk, 0);
  const T* v = row_ptr<T>(p.v, b, hk, 0);
  int n_tiles = (p.S + kTile - 1) / kTile;
  if (p.causal) n_tiles = min(n_tiles, q_block + 1);

  load_tile<D>(q_tile, row_ptr<T>(p.q, b, h, q0), p.q.row, p.L - q0, tid);
  load_tile<D>(do_tile, row_ptr<T>(p.dout, b, h, q0), p.dout.row, p.L - q0, tid);
  load_tile<D>(k_tiles, k, p.k.row, p.S, tid);
  load_tile<D>(v_tiles, v, p.v.row, p.S, tid);
  copy_async_commit();

  const int row = q0 + warp * 16 + g;
  float lse2[2], delta[2];
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int r = min(row + half * 8, p.L - 1);
    lse2[half] = p.lse[int64_t{blockIdx.y} * p.L + r] * kLog2e;
    delta[half] = p.delta[int64_t{blockIdx.y} * p.L + r];
  }
  copy_async_wait<0>();
  __syncthreads();

  float dq[D / 8][4] = {};
  for (int j = 0; j < n_tiles; ++j) {
    const int buf = j & 1;
    if (j + 1 < n_tiles) {
      const int c1 = (j + 1) * kTile;
      load_tile<D>(k_tiles + (buf ^ 1) * kTile * D, k + c1 * p.k.row, p.k.row, p.S - c1, tid);
      load_tile<D>(v_tiles + (buf ^ 1) * kTile * D, v + c1 * p.v.row, p.v.row, p.S - c1, tid);
    }
    copy_async_commit();
    const T* kt = k_tiles + buf * kTile * D;
    const T* vt = v_tiles + buf * kTile * D;

    float s[8][4] = {}, dp[8][4] = {};
    flash::gemm_a_bt<D, 8>(s, q_tile, warp * 16, kt, lane);
    flash::gemm_a_bt<D, 8>(dp, do_tile, warp * 16, vt, lane);
    const int c0 = j * kTile;
#pragma unroll
    for (int nt = 0; nt < 8; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int col = c0 + nt * 8 + 2 * t + (e & 1), r = row + (e >> 1) * 8;
        const bool visible = col < p.S && !(p.causal && col > r);
        const float prob = visible ? exp2f(s[nt][e] * p.scale_log2 - lse2[e >> 1]) : 0.f;
        dp[nt][e] = prob * (dp[nt][e] - delta[e >> 1]);
      }
    flash::gemm_p_b<D>(dq, dp, kt, lane);
    copy_async_wait<0>();
    __syncthreads();
  }
  T* out = static_cast<T*>(p.dq) + (int64_t{blockIdx.y} * p.L) * D;
  store_rows<D>(out, D, q0 + warp * 16, p.L, dq, p.scale, p.scale, lane);
}

/// dK and dV for 64 key/value rows, over every query row (of every query head sharing this
/// key/value head) that sees them: Sᵀ = K·Qᵀ, Pᵀ, dV += Pᵀ·dO, dPᵀ = V·dOᵀ,
/// dSᵀ = Pᵀ ⊙ (dPᵀ − delta), dK += scale · dSᵀ·Q.
template <int D, typename T>
__global__ void __launch_bounds__(kThreads) dkv_kernel(Params p) {
  extern __shared__ __align__(128) unsigned char smem[];
  T* k_tile = reinterpret_cast<T*>(smem);
  T* v_tile = k_tile + kTile * D;
  T* q_tiles = v_tile + kTile * D;
  T* do_tiles = q_tiles + 2 * kTile * D;
  float* lse_rows = reinterpret_cast<float*>(do_tiles + 2 * kTile * D);  // [2][64]
  float* delta_rows = lse_rows + 2 * kTile;                             // [2][64]
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;
  const int kv_block = blockIdx.x;  // causal: the first blocks see the most rows
  const int b = blockIdx.y / p.kv_heads, hk = blockIdx.y % p.kv_heads, group = p.heads / p.kv_heads;
  const int j0 = kv_block * kTile;
  const int first = p.causal ? kv_block : 0;  // query tiles before the diagonal see none of these keys
  const int q_blocks = (p.L + kTile - 1) / kTile;
  const int per_head = max(q_blocks - first, 0), items = group * per_head;

  load_tile<D>(k_tile, row_ptr<T>(p.k, b, hk, j0), p.k.row, p.S - j0, tid);
  load_tile<D>(v_tile, row_ptr<T>(p.v, b, hk, j0), p.v.row, p.S - j0, tid);
  auto load_item = [&](int item, int buf) {
    const int h = hk * group + item / per_head, i0 = (first + item % per_head) * kTile;
    const int64_t bh = int64_t{b} * p.heads + h;
    load_tile<D>(q_tiles + buf * kTile * D, row_ptr<T>(p.q, b, h, i0), p.q.row, p.L - i0, tid);
    load_tile<D>(do_tiles + buf * kTile * D, row_ptr<T>(p.dout, b, h, i0), p.dout.row, p.L - i0, tid);
    load_row_stats(lse_rows + buf * kTile, p.lse + bh * p.L + i0, p.L - i0, tid);
    load_row_stats(delta_rows + buf * kTile, p.delta + bh * p.L + i0, p.L - i0, tid);
  };
  if (items > 0) load_item(0, 0);
  copy_async_commit();
  copy_async_wait<0>();
  __syncthreads();

  float dk[D / 8][4] = {}, dv[D / 8][4] = {};
  const int kv_row = j0 + warp * 16 + g;  // this thread's key rows: kv_row and kv_row + 8
  for (int item = 0; item < items; ++item) {
    const int buf = item & 1;
    if (item + 1 < items) load_item(item + 1, buf ^ 1);
    copy_async_commit();
    const T* qt = q_tiles + buf * kTile * D;
    const T* dot = do_tiles + buf * kTile * D;
    const float* lse = lse_rows + buf * kTile;
    const float* dl = delta_rows + buf * kTile;
    const int i0 = (first + item % per_head) * kTile;

    float st[8][4] = {}, dpt[8][4] = {};
    flash::gemm_a_bt<D, 8>(st, k_tile, warp * 16, qt, lane);
    flash::gemm_a_bt<D, 8>(dpt, v_tile, warp * 16, dot, lane);
#pragma unroll
    for (int nt = 0; nt < 8; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int local = nt * 8 + 2 * t + (e & 1), qrow = i0 + local, kv = kv_row + (e >> 1) * 8;
        const bool visible = qrow < p.L && !(p.causal && kv > qrow);
        const float prob = visible ? exp2f(st[nt][e] * p.scale_log2 - lse[local] * kLog2e) : 0.f;
        st[nt][e] = prob;
        dpt[nt][e] = prob * (dpt[nt][e] - dl[local]);
      }
    flash::gemm_p_b<D>(dv, st, dot, lane);
    flash::gemm_p_b<D>(dk, dpt, qt, lane);
    copy_async_wait<0>();
    __syncthreads();
  }
  const int64_t base = (int64_t{blockIdx.y} * p.S) * D;
  store_rows<D>(static_cast<T*>(p.dk) + base, D, j0 + warp * 16, p.S, dk, p.scale, p.scale, lane);
  store_rows<D>(static_cast<T*>(p.dv) + base, D, j0 + warp * 16, p.S, dv, 1.f, 1.f, lane);
}

// ---------------------------------------------------------------------------------------------
// Host side.

Operand operand(const Tensor& t) {
  return {t.data(), t.strides()[0], t.strides()[1], t.strides()[2]};
}

Params params(const Tensor& q, const Tensor& k, const Tensor& v, bool causal, double scale) {
  Params p;
  p.q = operand(q);
  p.k = operand(k);
  p.v = operand(v);
  p.heads = static_cast<int>(q.sizes()[1]);
  p.kv_heads = static_cast<int>(k.sizes()[1]);
  p.L = static_cast<int>(q.sizes()[2]);
  p.S = static_cast<int>(k.sizes()[2]);
  p.scale = static_cast<float>(scale);
  p.scale_log2 = static_cast<float>(scale * 1.4426950408889634);
  p.causal = causal;
  return p;
}

/// Launches `kernel` with `smem` bytes of dynamic shared memory, raising the kernel's limit past
/// the default 48 KiB the first time on each device.
template <typename Kernel>
void launch(Kernel kernel, dim3 grid, size_t smem, cudaStream_t stream, int device, const Params& p) {
  if (smem > 48 * 1024) {
    static std::mutex mutex;
    static std::set<std::pair<const void*, int>> raised;
    std::lock_guard<std::mutex> lock(mutex);
    if (raised.emplace(reinterpret_cast<const void*>(kernel), device).second)
      EMBER_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  }
  kernel<<<grid, kThreads, smem, stream>>>(p);
  EMBER_CUDA_CHECK_LAUNCH();
}

template <typename F>
void dispatch(const Tensor& q, const char* op, F&& f) {
  const int64_t d = q.sizes()[3];
  auto by_dim = [&]<typename T>() {
    if (d == 64) return f.template operator()<64, T>();
    if (d == 128) return f.template operator()<128, T>();
    throw_error(ErrorCode::Unsupported, str_cat("[", op, "] head dim ", d, " (the fused kernel takes 64 and 128)"));
  };
  if (q.dtype() == kBFloat16) return by_dim.template operator()<__nv_bfloat16>();
  if (q.dtype() == kFloat16) return by_dim.template operator()<__half>();
  throw_error(ErrorCode::Unsupported, str_cat("[", op, "] dtype ", q.dtype(), " (the fused kernel takes float16 and bfloat16)"));
}

}  // namespace

void FlashAttentionOp::forward_cuda(const TensorList& inputs, const TensorList& outputs) {
  const Tensor &q = inputs[0], &k = inputs[1], &v = inputs[2];
  Params p = params(q, k, v, causal, scale);
  p.o = operand(outputs[0]);
  p.lse = outputs[1].data_ptr<float>();
  const int device = q.device().index;
  // Hopper's wgmma kernel where it applies (head dim 64, a layout the copy engine reads).
  if (flash_sm90::forward(q, k, v, outputs[0], p.lse, causal, scale, cuda_detail::stream(device))) return;
  const dim3 grid((p.L + kTile - 1) / kTile, static_cast<unsigned>(q.sizes()[0] * p.heads));
  if (p.L == 0 || grid.y == 0) return;
  dispatch(q, name(), [&]<int D, typename T>() {
    launch(forward_kernel<D, T>, grid, 5 * kTile * D * sizeof(T), cuda_detail::stream(device), device, p);
  });
}

void FlashAttentionBackwardOp::forward_cuda(const TensorList& inputs, const TensorList& outputs) {
  const Tensor &q = inputs[0], &k = inputs[1], &v = inputs[2];
  Params p = params(q, k, v, causal, scale);
  p.o = operand(inputs[3]);
  p.lse = const_cast<float*>(inputs[4].data_ptr<float>());
  p.dout = operand(inputs[5]);
  p.dq = outputs[0].data();
  p.dk = outputs[1].data();
  p.dv = outputs[2].data();
  const int64_t batch = q.sizes()[0];
  const int64_t rows = batch * p.heads * p.L;
  const int device = q.device().index;
  cudaStream_t stream = cuda_detail::stream(device);
  if (rows == 0 || p.S == 0) {  // no query sees a key: every gradient is zero
    for (const Tensor& g : outputs)
      if (g.numel() > 0) EMBER_CUDA_CHECK(cudaMemsetAsync(g.data(), 0, g.nbytes(), stream));
    return;
  }
  // Hopper's wgmma kernels where they apply (as for the forward).
  if (flash_sm90::backward(q, k, v, inputs[3], inputs[4], inputs[5], outputs[0], outputs[1], outputs[2], causal, scale,
                           stream))
    return;
  Tensor delta = empty({batch, p.heads, p.L}, {kFloat32, q.device()});
  p.delta = delta.data_ptr<float>();
  dispatch(q, name(), [&]<int D, typename T>() {
    const unsigned row_blocks = static_cast<unsigned>((rows + kThreads / 32 - 1) / (kThreads / 32));
    delta_kernel<D, T><<<row_blocks, kThreads, 0, stream>>>(p, rows);
    EMBER_CUDA_CHECK_LAUNCH();
    const dim3 q_grid((p.L + kTile - 1) / kTile, static_cast<unsigned>(batch * p.heads));
    launch(dq_kernel<D, T>, q_grid, 6 * kTile * D * sizeof(T), stream, device, p);
    const dim3 kv_grid((p.S + kTile - 1) / kTile, static_cast<unsigned>(batch * p.kv_heads));
    launch(dkv_kernel<D, T>, kv_grid, 6 * kTile * D * sizeof(T) + 4 * kTile * sizeof(float), stream, device, p);
  });
}

}  // namespace ember
