// The fused attention backward on Hopper (see flash_attention_sm90.h): the probabilities
// recomputed from the saved log-sum-exp, as in flash_attention.cu's backward, with each product
// a warp-group MMA fed by the tensor memory accelerator, as in the forward.
//
// The dK/dV kernel takes 128 key rows per block (64 per consumer group) and streams the query
// tiles that see them. It computes the transposed scores Sᵀ = K·Qᵀ and dPᵀ = V·dOᵀ (its key rows
// are wgmma's M), so Pᵀ and dSᵀ are already, in registers, the A operands of dV += Pᵀ·dO and
// dK += dSᵀ·Q; the Q and dO tiles serve as K-major operands of the first products and MN-major
// ones of the second.
//
// dQ comes one of two ways (DqMode). By default the same kernel writes dSᵀ to shared memory and
// computes dQ's partial dS·K for the tile (five products per tile pair, as FlashAttention-3),
// adding it into float32 sums in L2 with the copy engine's bulk reduction; a last small kernel
// scales and converts them. The order of those additions varies, so dQ's last bits may differ
// from run to run. Under cuda::deterministic() a second kernel over query blocks computes dQ
// instead, recomputing S and dP (seven products per tile pair, every gradient written once,
// without atomics).
//
// A small kernel first lays out the per-row statistics the others need, padded to whole blocks:
// the log-sum-exp times log2(e) (+inf past L, so padded rows give probability 0 with no mask)
// and delta = Σ dO·O.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "ops/creation.h"
#include "ops/cuda/flash_attention_sm90.h"
#include "ops/cuda/flash_sm90.cuh"
#include "runtime/cuda/runtime.h"
#include "runtime/error.h"

namespace ember::flash_sm90 {

namespace {

using namespace hopper;

constexpr float kLog2e = 1.4426950408889634f;
constexpr int kConsumers = 2;                    // consumer warp groups per block
constexpr int kThreads = 128 * kConsumers + 32;  // then one producer warp
constexpr int kBlockRows = kGroupRows * kConsumers;  // query rows (dQ) or key rows (dK, dV) per block
constexpr int kStatsRowsPerBlock = 8;            // the statistics kernel: one warp per row

struct BackwardParams {
  const float* lse2 = nullptr;   // [B·H, l_pad]: log-sum-exp · log2(e), +inf past L
  const float* delta = nullptr;  // [B·H, l_pad]: Σ dO·O, 0 past L
  void* dq = nullptr;            // contiguous [B, H, L, 64]
  void* dk = nullptr;            // contiguous [B, Hkv, S, 64]
  void* dv = nullptr;
  float* dq_accum = nullptr;  // the fused dQ's float32 sums, in fragment order (dq_convert_kernel)
  int q_tiles = 0;            // l_pad / 64: dq_accum's query tiles per head
  int heads = 0, kv_heads = 0, L = 0, S = 0, l_pad = 0;
  float scale = 1, scale_log2 = kLog2e;
  bool causal = false;
  // Where (row, head, batch) sit among each tensor map's outer coordinates (detail::make_map).
  int q_slot[3] = {0, 1, 2}, k_slot[3] = {0, 1, 2}, v_slot[3] = {0, 1, 2}, do_slot[3] = {0, 1, 2};
};

/// What MinBlocks blocks per multiprocessor leave each thread of the registers, in the
/// allocation's steps of 8. A looser cap than the hardware keeps: on an H100 and an H200 these
/// 288-thread kernels failed to launch ("too many resources requested") at 199 and more
/// registers and ran at 168, as if every warp group of four warps took its registers whole (288
/// threads counted as 384: at most 170). Variants must stay at or under 168 (ptxas -v).
constexpr int max_registers(int min_blocks) { return std::min(255, 65536 / (min_blocks * kThreads) / 8 * 8); }
/// What a 288-thread block may use and still launch, one block per multiprocessor (the rule
/// above: 65536 / 384, in steps of 8).
constexpr int kLaunchableRegisters = 168;

// ---------------------------------------------------------------------------------------------
// Row statistics.

struct StatsParams {
  const void* o = nullptr;
  int64_t o_batch = 0, o_head = 0, o_row = 0;  // element strides of the forward's output
  const void* dout = nullptr;                  // contiguous [B, H, L, 64]
  const float* lse = nullptr;                  // [B, H, L]
  float* lse2 = nullptr;
  float* delta = nullptr;
  int heads = 0, L = 0, l_pad = 0;
  int64_t rows = 0;  // B · H · l_pad
};

template <typename T>
__global__ void __launch_bounds__(32 * kStatsRowsPerBlock) stats_kernel(const StatsParams p) {
  const int64_t i = int64_t{blockIdx.x} * kStatsRowsPerBlock + (threadIdx.x >> 5);
  if (i >= p.rows) return;
  const int lane = threadIdx.x & 31;
  const int r = static_cast<int>(i % p.l_pad);
  const int64_t bh = i / p.l_pad;
  float acc = 0;
  if (r < p.L) {
    const int64_t b = bh / p.heads, h = bh % p.heads;
    const T* o = static_cast<const T*>(p.o) + b * p.o_batch + h * p.o_head + int64_t{r} * p.o_row + 2 * lane;
    const T* d = static_cast<const T*>(p.dout) + (bh * p.L + r) * kD + 2 * lane;
    acc = static_cast<float>(o[0]) * static_cast<float>(d[0]) + static_cast<float>(o[1]) * static_cast<float>(d[1]);
  }
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, off);
  if (lane == 0) {
    // A row that sees no key (log-sum-exp -inf) has probability 0 everywhere, as a padded row.
    const float lse = r < p.L ? p.lse[bh * p.L + r] : -INFINITY;
    p.lse2[i] = lse == -INFINITY ? INFINITY : lse * kLog2e;
    p.delta[i] = acc;
  }
}

// ---------------------------------------------------------------------------------------------
// dQ: a block takes 128 query rows (64 per consumer group) and streams key/value tiles.

/// A dQ kernel variant: keys per tile, stages, blocks per multiprocessor the registers must
/// allow, and whether tile j's S and dP are issued before tile j − 1's dS·K (pipelined) or each
/// tile's products run back to back.
template <int BlockN, int Stages, int MinBlocks, bool Pipelined>
struct DqConfig {
  static constexpr int kBlockN = BlockN, kStages = Stages, kMaxRegisters = max_registers(MinBlocks);
  static constexpr bool kPipelined = Pipelined;
};

template <typename T, typename C>
struct DqShared {
  alignas(1024) T q[kBlockRows * kD];
  alignas(1024) T dout[kBlockRows * kD];
  alignas(1024) T k[C::kStages][C::kBlockN * kD];
  alignas(1024) T v[C::kStages][C::kBlockN * kD];
  uint64_t rows_full, k_full[C::kStages], v_full[C::kStages], empty[C::kStages];
};

/// dQ = scale · Σ_tiles dS·K with S = Q·Kᵀ, P = 2^(S·scale·log2e − lse2), dP = dO·Vᵀ and
/// dS = P ⊙ (dP − delta). Keys past S need no mask: their K and V rows arrive as zeros, so they
/// add nothing to dQ.
template <typename T, typename C>
__global__ void __launch_bounds__(kThreads) __maxnreg__(C::kMaxRegisters)
    dq_kernel(const __grid_constant__ CUtensorMap q_map, const __grid_constant__ CUtensorMap do_map,
              const __grid_constant__ CUtensorMap k_map, const __grid_constant__ CUtensorMap v_map,
              const BackwardParams p) {
#ifdef EMBER_SM90A_DEVICE
  constexpr int kBlockN = C::kBlockN, kStages = C::kStages;
  using Smem = DqShared<T, C>;
  extern __shared__ unsigned char raw[];
  Smem& sm = *reinterpret_cast<Smem*>(raw + ((1024 - smem_u32(raw) % 1024) % 1024));

  // The warp group's index through a shuffle, which ptxas knows to be the same across the warp:
  // the shared-memory addresses made from it, and the wgmma descriptors, stay in uniform registers.
  const int tid = threadIdx.x, group = __shfl_sync(0xffffffffu, tid / 128, 0);
  const int q_block = gridDim.x - 1 - blockIdx.x;  // causal: the longest blocks start first
  const int bh = blockIdx.y, b = bh / p.heads, h = bh % p.heads, hk = h / (p.heads / p.kv_heads);
  const int q0 = q_block * kBlockRows;
  int n_tiles = (p.S + kBlockN - 1) / kBlockN;
  if (p.causal) n_tiles = min(n_tiles, (min(q0 + kBlockRows, p.L) + kBlockN - 1) / kBlockN);

  if (tid == 0) {
    barrier_init(&sm.rows_full, 1);
    for (int s = 0; s < kStages; ++s) {
      barrier_init(&sm.k_full[s], 1);
      barrier_init(&sm.v_full[s], 1);
      barrier_init(&sm.empty[s], kConsumers * 4);  // one arrival per consumer warp
    }
    barrier_init_fence();
  }
  __syncthreads();

  if (group == kConsumers) {  // the producer warp: one thread issues every copy
    if (tid == 128 * kConsumers) {
      barrier_arrive_expect(&sm.rows_full, 2 * kBlockRows * kRowBytes);
      load_rows(sm.q, &q_map, p.q_slot, q0, h, b, &sm.rows_full);
      load_rows(sm.dout, &do_map, p.do_slot, q0, h, b, &sm.rows_full);
      for (int j = 0; j < n_tiles; ++j) {
        const int s = j % kStages, round = j / kStages;
        if (round > 0) barrier_wait(&sm.empty[s], (round - 1) & 1);
        barrier_arrive_expect(&sm.k_full[s], kBlockN * kRowBytes);
        load_rows(sm.k[s], &k_map, p.k_slot, j * kBlockN, hk, b, &sm.k_full[s]);
        barrier_arrive_expect(&sm.v_full[s], kBlockN * kRowBytes);
        load_rows(sm.v[s], &v_map, p.v_slot, j * kBlockN, hk, b, &sm.v_full[s]);
      }
    }
    return;
  }

  const int lane = tid & 31, warp = (tid & 127) >> 5, g = lane >> 2, t = lane & 3;
  const int warp_row0 = q0 + group * kGroupRows + warp * 16;
  const int row = warp_row0 + g;  // this thread's rows: row and row + 8
  float lse2[2], delta[2];
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int64_t i = int64_t{bh} * p.l_pad + row + half * 8;  // < l_pad: rows past L read padding
    lse2[half] = p.lse2[i];
    delta[half] = p.delta[i];
  }
  const uint32_t q_addr = smem_u32(sm.q) + group * kGroupRows * kRowBytes;
  const uint32_t do_addr = smem_u32(sm.dout) + group * kGroupRows * kRowBytes;

  float dq[32] = {};
  float s[kBlockN / 2], dp[kBlockN / 2];  // each product's first step overwrites (accumulate = 0)
  uint32_t df[kBlockN / 16][4];
  // Pipelined as the forward: tile j's S and dP are issued before tile j − 1's dS·K, so that
  // tile j's gradient arithmetic overlaps that product. Every product is waited for on the path
  // that issued it: a wgmma left running across the loop's back edge, or waited for only after
  // an `if` around its loop, makes ptxas serialise every wgmma of the kernel (its warning
  // C7515; checked with -Xptxas -v).
  auto issue_scores = [&](int j) {
    const int st = j % kStages;
    const uint32_t parity = (j / kStages) & 1;
    barrier_wait(&sm.k_full[st], parity);  // both before the products: a wait loop between
    barrier_wait(&sm.v_full[st], parity);  // two wgmmas serialises them too
    fence_registers(s);
    fence_registers(dp);
    wgmma_fence();
    issue_ss<T, kBlockN>(s, q_addr, smem_u32(sm.k[st]));
    issue_ss<T, kBlockN>(dp, do_addr, smem_u32(sm.v[st]));
    wgmma_commit();
  };
  // dS = P ⊙ (dP − delta) into s; causal tiles that reach past a row's diagonal hide its later
  // columns.
  auto gradients = [&](int j) {
    const int c0 = j * kBlockN;
    const bool masked = p.causal && c0 + kBlockN - 1 > warp_row0;
#pragma unroll
    for (int nt = 0; nt < kBlockN / 8; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        float prob = fast_exp2(fmaf(s[4 * nt + e], p.scale_log2, -lse2[e >> 1]));
        if (masked && c0 + nt * 8 + 2 * t + (e & 1) > row + (e >> 1) * 8) prob = 0.f;
        s[4 * nt + e] = prob * (dp[4 * nt + e] - delta[e >> 1]);
      }
  };
  auto issue_dq = [&](int j) {
    fence_registers(df);
    fence_registers(dq);
    wgmma_fence();
    issue_rs<T, kBlockN>(dq, df, smem_u32(sm.k[j % kStages]));
    wgmma_commit();
  };
  barrier_wait(&sm.rows_full, 0);
  if constexpr (!C::kPipelined) {
    for (int j = 0; j < n_tiles; ++j) {
      issue_scores(j);
      wgmma_wait<0>();
      fence_registers(s);
      fence_registers(dp);
      gradients(j);
      pack_fragments<T, kBlockN>(df, s);
      issue_dq(j);
      wgmma_wait<0>();
      fence_registers(dq);
      if (lane == 0) barrier_arrive(&sm.empty[j % kStages]);
    }
  } else if (n_tiles > 0) {
    issue_scores(0);
    wgmma_wait<0>();
    fence_registers(s);
    fence_registers(dp);
    gradients(0);
    pack_fragments<T, kBlockN>(df, s);
    for (int j = 1; j < n_tiles; ++j) {
      issue_scores(j);
      issue_dq(j - 1);
      wgmma_wait<1>();  // tile j's S and dP are in
      fence_registers(s);
      fence_registers(dp);
      gradients(j);
      wgmma_wait<0>();  // tile j − 1's dS·K is in: its stage is free
      fence_registers(dq);
      fence_registers(df);
      if (lane == 0) barrier_arrive(&sm.empty[(j - 1) % kStages]);
      pack_fragments<T, kBlockN>(df, s);
    }
    issue_dq(n_tiles - 1);
    wgmma_wait<0>();
    fence_registers(dq);
  }
  store_rows<T>(static_cast<T*>(p.dq) + int64_t{bh} * p.L * kD, kD, row, p.L, t, dq, p.scale);
#else
  __trap();  // not built for sm_90a: the host never launches this (see refusal)
#endif
}

// ---------------------------------------------------------------------------------------------
// dK and dV: a block takes 128 key/value rows (64 per consumer group) and streams the query
// tiles of every query head that shares its key/value head.

/// Where dQ comes from. kSeparate: the dQ kernel (seven products per tile pair, deterministic).
/// Otherwise the dK/dV kernel also computes dS·K for each query tile and adds it into float32
/// sums in L2 with the copy engine's bulk reduction (five products; the order of the additions,
/// and so the last bits of dQ, vary from run to run): kOwnKeys, each consumer group over its own
/// 64 keys, independently; kHalfHeadDim, both groups over the block's 128 keys, each for half
/// the head dim — half the additions, but the groups meet at a barrier every tile.
enum class DqMode { kSeparate, kOwnKeys, kHalfHeadDim };

/// A dK/dV kernel variant: query rows per tile, stages, pipelined or back to back (as
/// DqConfig), and where dQ comes from.
template <int BlockM, int Stages, bool Pipelined, DqMode Dq = DqMode::kSeparate>
struct DkvConfig {
  static constexpr int kBlockM = BlockM, kStages = Stages;
  static constexpr int kMaxRegisters = Dq == DqMode::kSeparate ? max_registers(1) : kLaunchableRegisters;
  static constexpr bool kPipelined = Pipelined;
  static constexpr DqMode kDq = Dq;
  static_assert(Dq == DqMode::kSeparate || (BlockM == kGroupRows && !Pipelined),
                "the fused dQ takes 64-row query tiles (wgmma's M), back to back");
};

/// The fused dQ's shared memory: dSᵀ of the block's 128 keys in two buffers (a group rewrites
/// its rows while the other may still read the last tile's), and each group's partial dQ.
template <typename T, bool Fused>
struct DqStaging {};
template <typename T>
struct DqStaging<T, true> {
  alignas(1024) T ds[2][kBlockRows * kD];
  alignas(16) float dq[kConsumers][kGroupRows * kD];
};

template <typename T, typename C>
struct DkvShared {
  alignas(1024) T k[kBlockRows * kD];
  alignas(1024) T v[kBlockRows * kD];
  alignas(1024) T q[C::kStages][C::kBlockM * kD];
  alignas(1024) T dout[C::kStages][C::kBlockM * kD];
  alignas(16) float lse2[C::kStages][C::kBlockM];
  alignas(16) float delta[C::kStages][C::kBlockM];
  uint64_t kv_full, q_full[C::kStages], do_full[C::kStages], empty[C::kStages];
  DqStaging<T, C::kDq != DqMode::kSeparate> staging;
};

/// The fused dQ's float32 sums as dq_convert_kernel reads them: per query head and 64-row tile,
/// 16 KB in the accumulator's fragment order — float4 j (0..7: columns 8j..8j+7) of each of a
/// group's 128 threads, j-major — so that a group adds its partial with one bulk copy, and
/// kHalfHeadDim's half h is the contiguous second 8 KB.
constexpr int kDqTileFloats = kGroupRows * kD;

/// Over the query tiles that see these keys: Sᵀ = K·Qᵀ, Pᵀ, dV += Pᵀ·dO, dPᵀ = V·dOᵀ,
/// dSᵀ = Pᵀ ⊙ (dPᵀ − delta), dK += scale · dSᵀ·Q. Query rows past L need no mask (their
/// statistics are padding: probability 0); key rows past S are computed and not stored (and
/// add nothing to a fused dQ: their K rows are zeros).
template <typename T, typename C>
__global__ void __launch_bounds__(kThreads) __maxnreg__(C::kMaxRegisters)
    dkv_kernel(const __grid_constant__ CUtensorMap k_map, const __grid_constant__ CUtensorMap v_map,
               const __grid_constant__ CUtensorMap q_map, const __grid_constant__ CUtensorMap do_map,
               const BackwardParams p) {
#ifdef EMBER_SM90A_DEVICE
  constexpr int kBlockM = C::kBlockM, kStages = C::kStages;
  using Smem = DkvShared<T, C>;
  extern __shared__ unsigned char raw[];
  Smem& sm = *reinterpret_cast<Smem*>(raw + ((1024 - smem_u32(raw) % 1024) % 1024));

  // The warp group's index through a shuffle, which ptxas knows to be the same across the warp:
  // the shared-memory addresses made from it, and the wgmma descriptors, stay in uniform registers.
  const int tid = threadIdx.x, group = __shfl_sync(0xffffffffu, tid / 128, 0);
  const int bkv = blockIdx.y, b = bkv / p.kv_heads, hk = bkv % p.kv_heads, heads_per_kv = p.heads / p.kv_heads;
  const int j0 = blockIdx.x * kBlockRows;  // causal: the first blocks see the most rows
  const int first = p.causal ? j0 / kBlockM : 0;  // earlier query tiles see none of these keys
  const int per_head = max((p.L + kBlockM - 1) / kBlockM - first, 0), items = heads_per_kv * per_head;

  if (tid == 0) {
    barrier_init(&sm.kv_full, 1);
    for (int s = 0; s < kStages; ++s) {
      barrier_init(&sm.q_full[s], 1);
      barrier_init(&sm.do_full[s], 1);
      barrier_init(&sm.empty[s], kConsumers * 128);  // every consumer thread: see release_stage
    }
    barrier_init_fence();
  }
  __syncthreads();

  if (group == kConsumers) {
    if (tid == 128 * kConsumers) {
      barrier_arrive_expect(&sm.kv_full, 2 * kBlockRows * kRowBytes);
      load_rows(sm.k, &k_map, p.k_slot, j0, hk, b, &sm.kv_full);
      load_rows(sm.v, &v_map, p.v_slot, j0, hk, b, &sm.kv_full);
      constexpr uint32_t kStageBytes = kBlockM * kRowBytes + kBlockM * sizeof(float);
      for (int item = 0; item < items; ++item) {
        const int s = item % kStages, round = item / kStages;
        if (round > 0) barrier_wait(&sm.empty[s], (round - 1) & 1);
        const int h = hk * heads_per_kv + item / per_head, i0 = (first + item % per_head) * kBlockM;
        const int64_t stats = (int64_t{b} * p.heads + h) * p.l_pad + i0;
        barrier_arrive_expect(&sm.q_full[s], kStageBytes);
        load_rows(sm.q[s], &q_map, p.q_slot, i0, h, b, &sm.q_full[s]);
        bulk_load(sm.lse2[s], p.lse2 + stats, kBlockM * sizeof(float), &sm.q_full[s]);
        barrier_arrive_expect(&sm.do_full[s], kStageBytes);
        load_rows(sm.dout[s], &do_map, p.do_slot, i0, h, b, &sm.do_full[s]);
        bulk_load(sm.delta[s], p.delta + stats, kBlockM * sizeof(float), &sm.do_full[s]);
      }
    }
    return;
  }

  const int lane = tid & 31, warp = (tid & 127) >> 5, g = lane >> 2, t = lane & 3;
  const int warp_kv0 = j0 + group * kGroupRows + warp * 16;  // this thread's key rows: warp_kv0 + g (+ 8)
  const uint32_t k_addr = smem_u32(sm.k) + group * kGroupRows * kRowBytes;
  const uint32_t v_addr = smem_u32(sm.v) + group * kGroupRows * kRowBytes;

  using Scores = float[kBlockM / 2];
  using Fragments = uint32_t[kBlockM / 16][4];
  float dk[32] = {}, dv[32] = {};
  // Pipelined as the dQ kernel: tile i's Sᵀ and dPᵀ before tile i − 1's dV and dK products.
  auto issue_scores = [&](int item, Scores& st, Scores& dpt) {
    const int s = item % kStages;
    const uint32_t parity = (item / kStages) & 1;
    barrier_wait(&sm.q_full[s], parity);
    barrier_wait(&sm.do_full[s], parity);
    fence_registers(st);
    fence_registers(dpt);
    wgmma_fence();
    issue_ss<T, kBlockM>(st, k_addr, smem_u32(sm.q[s]));
    issue_ss<T, kBlockM>(dpt, v_addr, smem_u32(sm.dout[s]));
    wgmma_commit();
  };
  // Pᵀ into st and dSᵀ = Pᵀ ⊙ (dPᵀ − delta) into dpt, with the stage's row statistics.
  auto gradients = [&](int item, Scores& st, Scores& dpt) {
    const int s = item % kStages, i0 = (first + item % per_head) * kBlockM;
    const float* lse2 = sm.lse2[s];
    const float* delta = sm.delta[s];
    const bool masked = p.causal && warp_kv0 + 15 > i0;  // some key row after some query row
#pragma unroll
    for (int nt = 0; nt < kBlockM / 8; ++nt) {
      const int c = nt * 8 + 2 * t;  // this thread's query columns c and c + 1 of the tile
      const float2 l2 = *reinterpret_cast<const float2*>(lse2 + c);
      const float2 dl = *reinterpret_cast<const float2*>(delta + c);
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        float prob = fast_exp2(fmaf(st[4 * nt + e], p.scale_log2, -((e & 1) ? l2.y : l2.x)));
        if (masked && warp_kv0 + g + (e >> 1) * 8 > i0 + c + (e & 1)) prob = 0.f;
        st[4 * nt + e] = prob;
        dpt[4 * nt + e] = prob * (dpt[4 * nt + e] - ((e & 1) ? dl.y : dl.x));
      }
    }
  };
  // Every consumer thread has read the stage's row statistics with plain loads, so every one
  // hands the stage back: each read is then ordered before the producer's next copy into it by
  // that thread's own arrival. (One lane per warp after a __syncwarp orders them as well in the
  // memory model's terms, but compute-sanitizer's racecheck, which tracks each reader's own
  // arrival, reported the copies; bench/RESULTS.md, sessions 12 and 13.)
  auto release_stage = [&](uint64_t* empty) { barrier_arrive(empty); };
  // A tile's products back to back: Sᵀ and dPᵀ, then Pᵀ and dSᵀ packed as A fragments.
  auto scores_to_fragments = [&](int item, Scores& st, Scores& dpt, Fragments& pf, Fragments& df) {
    issue_scores(item, st, dpt);
    wgmma_wait<0>();
    fence_registers(st);
    fence_registers(dpt);
    gradients(item, st, dpt);
    pack_fragments<T, kBlockM>(pf, st);
    pack_fragments<T, kBlockM>(df, dpt);
  };
  auto issue_dkv = [&](int item, Fragments& pf, Fragments& df) {
    const int s = item % kStages;
    fence_registers(pf);
    fence_registers(df);
    fence_registers(dk);
    fence_registers(dv);
    wgmma_fence();
    issue_rs<T, kBlockM>(dv, pf, smem_u32(sm.dout[s]));
    issue_rs<T, kBlockM>(dk, df, smem_u32(sm.q[s]));
    wgmma_commit();
  };
  barrier_wait(&sm.kv_full, 0);
  if constexpr (C::kDq != DqMode::kSeparate) {
    // Per tile: dSᵀ goes to shared memory while dV and dK run; then dQ's partial = dS·K (dSᵀ and
    // K both read MN-major), staged in shared memory and added into dq_accum by the group's
    // first thread with one bulk reduction, which drains while the next tile is computed.
    constexpr bool kHalf = C::kDq == DqMode::kHalfHeadDim;
    constexpr int kDqN = kHalf ? kD / 2 : kD;                         // dQ columns per group
    constexpr int kDqSteps = (kHalf ? kBlockRows : kGroupRows) / 16;  // k16 steps over keys
    const bool leader = (tid & 127) == 0;
    float* staging = sm.staging.dq[group];
    for (int item = 0; item < items; ++item) {
      // Fresh each tile (every product's first step overwrites): nothing but dK and dV lives
      // from one tile to the next, which keeps the kernel within 168 registers.
      float st[kBlockM / 2], dpt[kBlockM / 2], dq[kDqN / 2];
      uint32_t pf[kBlockM / 16][4], df[kBlockM / 16][4];
      scores_to_fragments(item, st, dpt, pf, df);
      const uint32_t ds_tile = smem_u32(sm.staging.ds[item & 1]);
      store_swizzled<kBlockM>(ds_tile + group * kGroupRows * kRowBytes, warp, g, t, df);
      fence_proxy_async();
      issue_dkv(item, pf, df);
      if (leader && item > 0) bulk_wait_read<0>();  // the last partial has left `staging`
      if constexpr (kHalf)
        named_barrier_sync(1, 128 * kConsumers);  // both groups' dSᵀ rows are in
      else
        named_barrier_sync(2 + group, 128);
      const uint32_t a0 = kHalf ? ds_tile : ds_tile + group * kGroupRows * kRowBytes;
      const uint32_t b0 = kHalf ? smem_u32(sm.k) + group * kDqN * sizeof(T) : k_addr;
      wgmma_fence();
#pragma unroll
      for (int kk = 0; kk < kDqSteps; ++kk)
        wgmma_ss_mn<T, kDqN>(dq, descriptor(a0 + kk * 16 * kRowBytes), descriptor(b0 + kk * 16 * kRowBytes), kk);
      wgmma_commit();
      wgmma_wait<0>();
      fence_registers(dk);
      fence_registers(dv);
      fence_registers(pf);
      fence_registers(df);
      fence_registers(dq);
      release_stage(&sm.empty[item % kStages]);
#pragma unroll
      for (int j = 0; j < kDqN / 8; ++j)
        reinterpret_cast<float4*>(staging)[j * 128 + (tid & 127)] =
            make_float4(dq[4 * j], dq[4 * j + 1], dq[4 * j + 2], dq[4 * j + 3]);
      fence_proxy_async();
      named_barrier_sync(2 + group, 128);
      if (leader) {
        const int h = hk * heads_per_kv + item / per_head, tile = first + item % per_head;
        float* dst = p.dq_accum + ((int64_t{b} * p.heads + h) * p.q_tiles + tile) * kDqTileFloats +
                     (kHalf ? group * kDqTileFloats / 2 : 0);
        bulk_reduce_add(dst, staging, kGroupRows * kDqN * sizeof(float));
        bulk_commit();
      }
    }
    if (leader) bulk_wait<0>();  // shared memory stays until the last addition has read it
  } else if constexpr (!C::kPipelined) {
    float st[kBlockM / 2], dpt[kBlockM / 2];
    uint32_t pf[kBlockM / 16][4], df[kBlockM / 16][4];
    for (int item = 0; item < items; ++item) {
      scores_to_fragments(item, st, dpt, pf, df);
      issue_dkv(item, pf, df);
      wgmma_wait<0>();
      fence_registers(dk);
      fence_registers(dv);
      release_stage(&sm.empty[item % kStages]);
    }
  } else if (items > 0) {
    float st[kBlockM / 2], dpt[kBlockM / 2];
    uint32_t pf[kBlockM / 16][4], df[kBlockM / 16][4];
    issue_scores(0, st, dpt);
    wgmma_wait<0>();
    fence_registers(st);
    fence_registers(dpt);
    gradients(0, st, dpt);
    pack_fragments<T, kBlockM>(pf, st);
    pack_fragments<T, kBlockM>(df, dpt);
    for (int item = 1; item < items; ++item) {
      issue_scores(item, st, dpt);
      issue_dkv(item - 1, pf, df);
      wgmma_wait<1>();
      fence_registers(st);
      fence_registers(dpt);
      gradients(item, st, dpt);
      wgmma_wait<0>();  // tile item − 1's products are in: its stage is free
      fence_registers(dk);
      fence_registers(dv);
      fence_registers(pf);
      fence_registers(df);
      release_stage(&sm.empty[(item - 1) % kStages]);
      pack_fragments<T, kBlockM>(pf, st);
      pack_fragments<T, kBlockM>(df, dpt);
    }
    issue_dkv(items - 1, pf, df);
    wgmma_wait<0>();
    fence_registers(dk);
    fence_registers(dv);
  }
  const int64_t base = int64_t{bkv} * p.S * kD;
  store_rows<T>(static_cast<T*>(p.dk) + base, kD, warp_kv0 + g, p.S, t, dk, p.scale);
  store_rows<T>(static_cast<T*>(p.dv) + base, kD, warp_kv0 + g, p.S, t, dv, 1.f);
#else
  __trap();
#endif
}

/// dQ = scale · the fused dQ's float32 sums (laid out as kDqTileFloats says), rows below L.
template <typename T>
__global__ void __launch_bounds__(256) dq_convert_kernel(const float4* sums, T* dq, int L, int q_tiles, float scale,
                                                         int64_t n) {
  const int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const int thread = static_cast<int>(i % 128), j = static_cast<int>(i / 128 % 8);
  const int64_t chunk = i / 1024, bh = chunk / q_tiles;
  const int tile = static_cast<int>(chunk % q_tiles), lane = thread & 31;
  const int row = tile * kGroupRows + (thread >> 5) * 16 + (lane >> 2), col = 8 * j + 2 * (lane & 3);
  const float4 v = sums[i];
  T* out = dq + bh * L * kD + col;
  if (row < L) *reinterpret_cast<uint32_t*>(out + int64_t{row} * kD) = flash::pack2<T>(v.x * scale, v.y * scale);
  if (row + 8 < L)
    *reinterpret_cast<uint32_t*>(out + int64_t{row + 8} * kD) = flash::pack2<T>(v.z * scale, v.w * scale);
}

// ---------------------------------------------------------------------------------------------
// Host side.

template <typename Kernel, typename... Args>
void launch(Kernel kernel, dim3 grid, size_t smem, cudaStream_t stream, int device, const Args&... args) {
  detail::allow_shared_memory(reinterpret_cast<const void*>(kernel), smem, device);
  kernel<<<grid, kThreads, smem, stream>>>(args...);
  EMBER_CUDA_CHECK_LAUNCH();
}

/// Makes the four tensor maps of both kernels, then runs the statistics, dQ and dK/dV kernels
/// (with a fused dQ: the statistics and dK/dV kernels, then dq_convert_kernel); false, with
/// nothing launched, where the copy engine refuses a layout.
template <typename T, typename Dq, typename Dkv>
bool run(BackwardParams& p, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& o, const Tensor& lse,
         const Tensor& dout, cudaStream_t stream) {
  CUtensorMap dq_q, dq_do, dq_k, dq_v, kv_k, kv_v, kv_q, kv_do;
  BackwardParams kv = p;
  if (!detail::make_map(q, kBlockRows, dq_q, p.q_slot) || !detail::make_map(dout, kBlockRows, dq_do, p.do_slot) ||
      !detail::make_map(k, Dq::kBlockN, dq_k, p.k_slot) || !detail::make_map(v, Dq::kBlockN, dq_v, p.v_slot) ||
      !detail::make_map(k, kBlockRows, kv_k, kv.k_slot) || !detail::make_map(v, kBlockRows, kv_v, kv.v_slot) ||
      !detail::make_map(q, Dkv::kBlockM, kv_q, kv.q_slot) || !detail::make_map(dout, Dkv::kBlockM, kv_do, kv.do_slot))
    return false;
  const int device = q.device().index;
  const int64_t bh = q.sizes()[0] * p.heads;
  Tensor stats = empty({2, bh, p.l_pad}, {kFloat32, q.device()});
  p.lse2 = kv.lse2 = stats.data_ptr<float>();
  p.delta = kv.delta = p.lse2 + bh * p.l_pad;

  StatsParams sp;
  sp.o = o.data();
  sp.o_batch = o.strides()[0];
  sp.o_head = o.strides()[1];
  sp.o_row = o.strides()[2];
  sp.dout = dout.data();
  sp.lse = lse.data_ptr<float>();
  sp.lse2 = const_cast<float*>(p.lse2);
  sp.delta = const_cast<float*>(p.delta);
  sp.heads = p.heads;
  sp.L = p.L;
  sp.l_pad = p.l_pad;
  sp.rows = bh * p.l_pad;
  const auto stats_blocks = static_cast<unsigned>((sp.rows + kStatsRowsPerBlock - 1) / kStatsRowsPerBlock);
  stats_kernel<T><<<stats_blocks, 32 * kStatsRowsPerBlock, 0, stream>>>(sp);
  EMBER_CUDA_CHECK_LAUNCH();

  const dim3 q_grid(static_cast<unsigned>((p.L + kBlockRows - 1) / kBlockRows), static_cast<unsigned>(bh));
  const dim3 kv_grid(static_cast<unsigned>((p.S + kBlockRows - 1) / kBlockRows),
                     static_cast<unsigned>(q.sizes()[0] * p.kv_heads));
  if constexpr (Dkv::kDq == DqMode::kSeparate) {
    launch(dq_kernel<T, Dq>, q_grid, sizeof(DqShared<T, Dq>) + 1024, stream, device, dq_q, dq_do, dq_k, dq_v, p);
    launch(dkv_kernel<T, Dkv>, kv_grid, sizeof(DkvShared<T, Dkv>) + 1024, stream, device, kv_k, kv_v, kv_q, kv_do, kv);
  } else {
    kv.q_tiles = p.l_pad / kGroupRows;
    const int64_t floats = bh * kv.q_tiles * kDqTileFloats;
    Tensor sums = empty({floats}, {kFloat32, q.device()});
    kv.dq_accum = sums.data_ptr<float>();
    EMBER_CUDA_CHECK(cudaMemsetAsync(kv.dq_accum, 0, floats * sizeof(float), stream));
    launch(dkv_kernel<T, Dkv>, kv_grid, sizeof(DkvShared<T, Dkv>) + 1024, stream, device, kv_k, kv_v, kv_q, kv_do, kv);
    const int64_t n = floats / 4;
    dq_convert_kernel<T><<<static_cast<unsigned>((n + 255) / 256), 256, 0, stream>>>(
        reinterpret_cast<const float4*>(kv.dq_accum), static_cast<T*>(p.dq), p.L, kv.q_tiles, p.scale, n);
    EMBER_CUDA_CHECK_LAUNCH();
  }
  return true;
}

}  // namespace

bool backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& o, const Tensor& lse,
              const Tensor& dout, const Tensor& dq, const Tensor& dk, const Tensor& dv, bool causal, double scale,
              cudaStream_t stream) {
  const std::string which = detail::variant();
  if (!detail::device_refusal(q).empty() || which == "fwd") return false;
  BackwardParams p;
  p.dq = dq.data();
  p.dk = dk.data();
  p.dv = dv.data();
  p.heads = static_cast<int>(q.sizes()[1]);
  p.kv_heads = static_cast<int>(k.sizes()[1]);
  p.L = static_cast<int>(q.sizes()[2]);
  p.S = static_cast<int>(k.sizes()[2]);
  p.l_pad = (p.L + kBlockRows - 1) / kBlockRows * kBlockRows;
  p.scale = static_cast<float>(scale);
  p.scale_log2 = static_cast<float>(scale * 1.4426950408889634);
  p.causal = causal;
  // The default: dQ fused into the dK/dV kernel (five products per tile pair), the two groups
  // each over half the head dim; with cuda::deterministic(), the two-kernel form: dQ over
  // 64-key tiles, dK/dV over 64-row query tiles, three stages each, each tile's products back
  // to back (the two consumer groups interleave). Measured on an H100 and an H200
  // (bench/RESULTS.md). The pipelined forms need more registers than 288 threads may hold for
  // dQ over 128-key tiles (218) and for dK/dV (199): those failed to launch. Variants for the
  // benchmark (EMBER_FLASH_SM90): split, the two-kernel form; own, the fused dQ with each group
  // over its own keys; bq64p, the two-kernel form with dQ pipelined.
  const bool split = cuda::deterministic() || which == "split";
  auto go = [&]<typename T>() {
    if (which == "bq64p")
      return run<T, DqConfig<64, 3, 1, true>, DkvConfig<64, 3, false>>(p, q, k, v, o, lse, dout, stream);
    if (split) return run<T, DqConfig<64, 3, 1, false>, DkvConfig<64, 3, false>>(p, q, k, v, o, lse, dout, stream);
    if (which == "own")
      return run<T, DqConfig<64, 3, 1, false>, DkvConfig<64, 3, false, DqMode::kOwnKeys>>(p, q, k, v, o, lse, dout,
                                                                                           stream);
    return run<T, DqConfig<64, 3, 1, false>, DkvConfig<64, 3, false, DqMode::kHalfHeadDim>>(p, q, k, v, o, lse, dout,
                                                                                              stream);
  };
  return q.dtype() == kBFloat16 ? go.template operator()<__nv_bfloat16>() : go.template operator()<__half>();
}

}  // namespace ember::flash_sm90
