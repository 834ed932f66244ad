// Fused attention for float32 inference (FlashAttentionFloatOp, ops/attention.h): the scores of
// a head are never stored, as in the half-precision kernel (flash_attention.cu), but computed
// with float32 FMAs in full precision (no TF32), so results match the math path's float32
// GEMMs to rounding. Forward only: float32 training keeps the math path, whose backward reuses
// the stored probabilities.
//
// A block takes 64 query rows of one head and streams 64-key tiles through shared memory:
// S = Q·Kᵀ, an online softmax (running row maximum and sum), O += P·V. Each of the 128 threads
// owns 8 rows × 4 columns of a tile (and 8 rows × 4 columns per 64 of the head dim of O), so a
// row's 64 scores live in the 16 threads of one half-warp: its maximum takes four shuffles, and
// the half-warp reads back only the rows of P it wrote (a warp barrier, not a block one).
#include <cmath>
#include <mutex>
#include <set>

#include "ops/attention.h"
#include "runtime/cuda/runtime.h"
#include "runtime/error.h"

namespace ember {

namespace {

constexpr int kRows = 64;      // query rows per block, and keys per tile
constexpr int kThreads = 128;  // 8 row groups of 8 rows × 16 column groups of 4 columns
constexpr float kLog2e = 1.4426950408889634f;

/// A [B, H, rows, D] operand with a contiguous last dim; strides in elements.
struct Operand {
  const float* ptr = nullptr;
  int64_t batch = 0, head = 0, row = 0;
};

struct Params {
  Operand q, k, v;
  float* out = nullptr;  // contiguous [B, H, L, D]
  int heads = 0, kv_heads = 0, L = 0, S = 0;
  float scale_log2 = kLog2e;  // the scale times log2(e): scores are exponentiated with exp2
  bool causal = false;
};

__device__ __forceinline__ float4 load4(const float* p) { return *reinterpret_cast<const float4*>(p); }
__device__ __forceinline__ void store4(float* p, float4 x) { *reinterpret_cast<float4*>(p) = x; }
__device__ __forceinline__ float at(const float4& x, int i) { return i == 0 ? x.x : i == 1 ? x.y : i == 2 ? x.z : x.w; }

// Blocks per SM the registers must allow: shared memory (64 KiB for D 64, 112 KiB for 128)
// allows three or two.
template <int D>
__global__ void __launch_bounds__(kThreads, D == 64 ? 3 : 2) attention_float_kernel(Params p) {
  constexpr int kVec = D / 4;      // float4s per row of q, k, v
  constexpr int kCols = D / 64;    // 4-column groups of O per thread
  constexpr int kLoads = kRows * kVec / kThreads;
  extern __shared__ __align__(16) float smem[];
  float* qs = smem;              // [64][D]  the block's query rows
  float* kt = qs + kRows * D;    // [D][64]  the tile's keys, transposed
  float* vs = kt + D * kRows;    // [64][D]  the tile's values
  float* ps = vs + kRows * D;    // [64][64] the tile's probabilities
  const int tid = threadIdx.x, ty = tid >> 4, tx = tid & 15, r0 = ty * 8;
  const int q_block = gridDim.x - 1 - blockIdx.x;  // causal: the longest blocks start first
  const int bh = blockIdx.y, b = bh / p.heads, h = bh % p.heads, hk = h / (p.heads / p.kv_heads);
  const int q0 = q_block * kRows;
  const float* q = p.q.ptr + b * p.q.batch + h * p.q.head + int64_t{q0} * p.q.row;
  const float* k = p.k.ptr + b * p.k.batch + hk * p.k.head;
  const float* v = p.v.ptr + b * p.v.batch + hk * p.v.head;
  const float4 zero = make_float4(0.f, 0.f, 0.f, 0.f);

#pragma unroll
  for (int it = 0; it < kLoads; ++it) {
    const int i = tid + it * kThreads, r = i / kVec, c = i % kVec;
    store4(qs + r * D + 4 * c, q0 + r < p.L ? load4(q + r * p.q.row + 4 * c) : zero);
  }

  float o[8][kCols][4] = {};
  float m[8], l[8];  // per row: the running maximum (log2 units) and this thread's partial sum
#pragma unroll
  for (int i = 0; i < 8; ++i) m[i] = -INFINITY, l[i] = 0.f;
  int n_tiles = (p.S + kRows - 1) / kRows;
  if (p.causal) n_tiles = min(n_tiles, q_block + 1);  // row i sees keys j <= i

  for (int j = 0; j < n_tiles; ++j) {
    const int c0 = j * kRows;
    __syncthreads();  // every thread is done with the previous tile's keys and values
#pragma unroll 4
    for (int it = 0; it < kLoads; ++it) {
      const int i = tid + it * kThreads;
      // Keys transposed, consecutive threads on consecutive keys: conflict-free stores.
      const int n = i % kRows, kc = i / kRows;
      const float4 x = c0 + n < p.S ? load4(k + (c0 + n) * p.k.row + 4 * kc) : zero;
      kt[(4 * kc) * kRows + n] = x.x;
      kt[(4 * kc + 1) * kRows + n] = x.y;
      kt[(4 * kc + 2) * kRows + n] = x.z;
      kt[(4 * kc + 3) * kRows + n] = x.w;
      // Values as stored: zeros past S (their probabilities are zero, and 0 · NaN is not).
      const int r = i / kVec, vc = i % kVec;
      store4(vs + r * D + 4 * vc, c0 + r < p.S ? load4(v + (c0 + r) * p.v.row + 4 * vc) : zero);
    }
    __syncthreads();

    // S = Q·Kᵀ for rows r0..r0+7, keys c0 + 4·tx .. +3.
    float s[8][4] = {};
#pragma unroll 4
    for (int d = 0; d < D; d += 4) {
      float4 kk[4];
#pragma unroll
      for (int dd = 0; dd < 4; ++dd) kk[dd] = load4(kt + (d + dd) * kRows + 4 * tx);
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        const float4 qq = load4(qs + (r0 + i) * D + d);
        s[i][0] = fmaf(qq.w, kk[3].x, fmaf(qq.z, kk[2].x, fmaf(qq.y, kk[1].x, fmaf(qq.x, kk[0].x, s[i][0]))));
        s[i][1] = fmaf(qq.w, kk[3].y, fmaf(qq.z, kk[2].y, fmaf(qq.y, kk[1].y, fmaf(qq.x, kk[0].y, s[i][1]))));
        s[i][2] = fmaf(qq.w, kk[3].z, fmaf(qq.z, kk[2].z, fmaf(qq.y, kk[1].z, fmaf(qq.x, kk[0].z, s[i][2]))));
        s[i][3] = fmaf(qq.w, kk[3].w, fmaf(qq.z, kk[2].w, fmaf(qq.y, kk[1].w, fmaf(qq.x, kk[0].w, s[i][3]))));
      }
    }

    // Scale, mask, and fold the tile into each row's running maximum and sum.
    const bool edge = c0 + kRows > p.S || (p.causal && c0 + kRows - 1 > q0 + r0);
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      float mx = -INFINITY;
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        float x = s[i][e] * p.scale_log2;
        if (edge) {
          const int col = c0 + 4 * tx + e;
          if (col >= p.S || (p.causal && col > q0 + r0 + i)) x = -INFINITY;
        }
        s[i][e] = x;
        mx = fmaxf(mx, x);
      }
#pragma unroll
      for (int lane_mask = 1; lane_mask < 16; lane_mask <<= 1)
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, lane_mask));
      const float m_new = fmaxf(m[i], mx);
      const float base = m_new == -INFINITY ? 0.f : m_new;  // a row with nothing visible yet
      const float alpha = exp2f(m[i] - base);
      m[i] = m_new;
      float4 pr;
      pr.x = exp2f(s[i][0] - base);
      pr.y = exp2f(s[i][1] - base);
      pr.z = exp2f(s[i][2] - base);
      pr.w = exp2f(s[i][3] - base);
      l[i] = l[i] * alpha + ((pr.x + pr.y) + (pr.z + pr.w));
#pragma unroll
      for (int c = 0; c < kCols; ++c)
#pragma unroll
        for (int e = 0; e < 4; ++e) o[i][c][e] *= alpha;
      store4(ps + (r0 + i) * kRows + 4 * tx, pr);
    }
    __syncwarp();  // rows r0..r0+7 of P were written by this half-warp, and only it reads them

    // O += P·V over the tile's keys.
#pragma unroll 2
    for (int n = 0; n < kRows; n += 4) {
      float4 pp[8];
#pragma unroll
      for (int i = 0; i < 8; ++i) pp[i] = load4(ps + (r0 + i) * kRows + n);
#pragma unroll
      for (int nn = 0; nn < 4; ++nn)
#pragma unroll
        for (int c = 0; c < kCols; ++c) {
          const float4 vv = load4(vs + (n + nn) * D + 64 * c + 4 * tx);
#pragma unroll
          for (int i = 0; i < 8; ++i) {
            const float w = at(pp[i], nn);
            o[i][c][0] = fmaf(w, vv.x, o[i][c][0]);
            o[i][c][1] = fmaf(w, vv.y, o[i][c][1]);
            o[i][c][2] = fmaf(w, vv.z, o[i][c][2]);
            o[i][c][3] = fmaf(w, vv.w, o[i][c][3]);
          }
        }
    }
  }

  float* out = p.out + (int64_t{bh} * p.L + q0) * D;
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    float sum = l[i];
#pragma unroll
    for (int lane_mask = 1; lane_mask < 16; lane_mask <<= 1) sum += __shfl_xor_sync(0xffffffffu, sum, lane_mask);
    const float inv = sum > 0 ? 1.f / sum : 0.f;
    if (q0 + r0 + i >= p.L) continue;
#pragma unroll
    for (int c = 0; c < kCols; ++c)
      store4(out + (r0 + i) * D + 64 * c + 4 * tx,
             make_float4(o[i][c][0] * inv, o[i][c][1] * inv, o[i][c][2] * inv, o[i][c][3] * inv));
  }
}

Operand operand(const Tensor& t) {
  return {t.data_ptr<float>(), t.strides()[0], t.strides()[1], t.strides()[2]};
}

template <int D>
void launch(const Params& p, dim3 grid, cudaStream_t stream, int device) {
  constexpr size_t smem = (3 * kRows * D + kRows * kRows) * sizeof(float);
  auto kernel = attention_float_kernel<D>;
  {
    // Past the default 48 KiB of shared memory a kernel must ask, once on each device.
    static std::mutex mutex;
    static std::set<int> raised;
    std::lock_guard<std::mutex> lock(mutex);
    if (raised.insert(device).second)
      EMBER_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  }
  kernel<<<grid, kThreads, smem, stream>>>(p);
  EMBER_CUDA_CHECK_LAUNCH();
}

}  // namespace

void FlashAttentionFloatOp::forward_cuda(const TensorList& inputs, const TensorList& outputs) {
  const Tensor &q = inputs[0], &k = inputs[1], &v = inputs[2];
  Params p;
  p.q = operand(q);
  p.k = operand(k);
  p.v = operand(v);
  p.out = outputs[0].data_ptr<float>();
  p.heads = static_cast<int>(q.sizes()[1]);
  p.kv_heads = static_cast<int>(k.sizes()[1]);
  p.L = static_cast<int>(q.sizes()[2]);
  p.S = static_cast<int>(k.sizes()[2]);
  p.scale_log2 = static_cast<float>(scale * 1.4426950408889634);
  p.causal = causal;
  const dim3 grid((p.L + kRows - 1) / kRows, static_cast<unsigned>(q.sizes()[0] * p.heads));
  if (p.L == 0 || grid.y == 0) return;
  const int device = q.device().index;
  cudaStream_t stream = cuda_detail::stream(device);
  switch (q.sizes()[3]) {
    case 64: return launch<64>(p, grid, stream, device);
    case 128: return launch<128>(p, grid, stream, device);
    default:
      throw_error(ErrorCode::Unsupported,
                  str_cat("[", name(), "] head dim ", q.sizes()[3], " (the float32 kernel takes 64 and 128)"));
  }
}

}  // namespace ember
