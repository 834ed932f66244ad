// The fused attention forward on Hopper (see flash_attention_sm90.h). A block takes 64 query rows
// per consumer warp group (two groups: 128 rows of one head) and one producer warp, whose one
// thread issues the tensor memory accelerator's copies: Q once, then each key/value tile into a
// ring of shared-memory stages whose readiness and release mbarriers track. Per key tile a
// consumer group computes S = Q·Kᵀ with wgmma from shared memory, runs the online softmax on S
// in registers, and adds P·V with P straight from registers; pipelined, it issues the next
// tile's S before this tile's P·V so that the softmax overlaps a product (FlashAttention-3's
// scheme). The groups never wait for each other, so one group's exponentials also overlap the
// other's products. The numerics are those of flash_attention.cu's forward (same masking, same
// log-sum-exp), so its backward applies.
#include "ops/cuda/flash_attention_sm90.h"

#include <cudaTypedefs.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>
#include <utility>

#include "ops/attention.h"
#include "ops/cuda/flash_sm90.cuh"
#include "runtime/cuda/runtime.h"
#include "runtime/error.h"

// The kernels' bodies compile only in the sm_90a device pass (EMBER_SM90A_DEVICE). In the other
// passes (host, the portable PTX) the constants, members and helpers that only those bodies use
// look unreferenced to nvcc, which would warn about each (#177).
#ifndef EMBER_SM90A_DEVICE
#pragma nv_diag_suppress 177
#endif

namespace ember::flash_sm90 {

namespace {

using namespace hopper;

constexpr float kLn2 = 0.6931471805599453f;

/// A kernel variant: key rows per tile, shared-memory stages, consumer warp groups (64 query
/// rows each), blocks per multiprocessor the registers must allow, whether a group overlaps the
/// softmax of tile j with its P·V product of tile j − 1 (FlashAttention-3's intra-group
/// pipelining) or runs each tile's two products back to back, and whether two consumer groups
/// take turns issuing their products (FlashAttention-3's ping-pong: one group's softmax runs
/// while the other's products keep the tensor cores busy).
template <int BlockN, int Stages, int Consumers, int MinBlocks, bool Pipelined, bool Pingpong = false>
struct Config {
  static constexpr int kBlockN = BlockN, kStages = Stages, kConsumers = Consumers, kMinBlocks = MinBlocks;
  static constexpr bool kPipelined = Pipelined, kPingpong = Pingpong && Consumers == 2;
  static constexpr int kBlockM = kGroupRows * Consumers;
  static constexpr int kThreads = 128 * Consumers + 32;  // the consumers, then one producer warp
  // What MinBlocks blocks of kThreads may each hold of the 64K registers, in the allocation's
  // steps of 8 (launch_bounds' own minimum-blocks cap is stricter than the hardware needs).
  static constexpr int kMaxRegisters = std::min(255, 65536 / (MinBlocks * kThreads) / 8 * 8);
};

struct Params {
  void* o = nullptr;
  int64_t o_batch = 0, o_head = 0, o_row = 0;  // element strides of the output
  float* lse = nullptr;                        // [B, H, L]
  int heads = 0, kv_heads = 0, L = 0, S = 0;
  float scale_log2 = 0;                        // scale · log2(e), positive
  bool causal = false;
  // Where each of (row, head, batch) sits among a tensor map's outer coordinates: the maps order
  // their dims by stride, as the copy engine requires.
  int q_slot[3] = {0, 1, 2}, k_slot[3] = {0, 1, 2}, v_slot[3] = {0, 1, 2};
};

template <typename T, typename C>
struct SharedStorage {
  alignas(1024) T q[C::kBlockM * kD];
  alignas(1024) T k[C::kStages][C::kBlockN * kD];
  alignas(1024) T v[C::kStages][C::kBlockN * kD];
  uint64_t q_full, k_full[C::kStages], v_full[C::kStages], empty[C::kStages];
};

/// One consumer group's running softmax state for its thread's two rows (row, row + 8): the
/// largest raw score so far and the sum of exponentials below it.
struct RowState {
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0, 0};
};

/// Turns raw scores s (the m64nN accumulator, masked entries already -inf) into unnormalised
/// probabilities in place, updates the row state, and returns each row's rescale factor for
/// what was accumulated before. Reductions run as trees: with two or three warps per scheduler
/// a 32-long dependent chain would leave it idle.
template <int N>
__device__ __forceinline__ void online_softmax(float (&s)[N], RowState& st, float scale_log2, float (&alpha)[2]) {
  constexpr int kNT = N / 4;
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    float mx[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
#pragma unroll
    for (int nt = 0; nt < kNT; ++nt)
      mx[nt & 3] = fmaxf(mx[nt & 3], fmaxf(s[4 * nt + 2 * half], s[4 * nt + 2 * half + 1]));
    float m = fmaxf(fmaxf(mx[0], mx[1]), fmaxf(mx[2], mx[3]));
    m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 1));
    m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 2));
    const float m_new = fmaxf(st.m[half], m);
    const float base = m_new == -INFINITY ? 0.f : m_new * scale_log2;  // a row with nothing visible yet
    alpha[half] = fast_exp2(st.m[half] * scale_log2 - base);
    st.m[half] = m_new;
    float sum[4] = {0, 0, 0, 0};
#pragma unroll
    for (int nt = 0; nt < kNT; ++nt) {
      const float a = fast_exp2(fmaf(s[4 * nt + 2 * half], scale_log2, -base));
      const float b = fast_exp2(fmaf(s[4 * nt + 2 * half + 1], scale_log2, -base));
      s[4 * nt + 2 * half] = a;
      s[4 * nt + 2 * half + 1] = b;
      sum[nt & 3] += a + b;
    }
    st.l[half] = st.l[half] * alpha[half] + ((sum[0] + sum[1]) + (sum[2] + sum[3]));
  }
}

/// Sets to -inf the scores of tile columns c0.. that row r may not see (past S, or after r when
/// causal); only tiles that reach past S or the diagonal need it.
template <int N>
__device__ __forceinline__ void mask_scores(float (&s)[N], int c0, int row, int t, const Params& p) {
#pragma unroll
  for (int nt = 0; nt < N / 4; ++nt)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int col = c0 + nt * 8 + 2 * t + (e & 1), r = row + (e >> 1) * 8;
      if (col >= p.S || (p.causal && col > r)) s[4 * nt + e] = -INFINITY;
    }
}

__device__ __forceinline__ void rescale(float (&o)[32], const float (&alpha)[2]) {
#pragma unroll
  for (int dt = 0; dt < kD / 8; ++dt) {
    o[4 * dt] *= alpha[0];
    o[4 * dt + 1] *= alpha[0];
    o[4 * dt + 2] *= alpha[1];
    o[4 * dt + 3] *= alpha[1];
  }
}

template <typename T, typename C>
__global__ void __launch_bounds__(C::kThreads) __maxnreg__(C::kMaxRegisters)
    forward_kernel(const __grid_constant__ CUtensorMap q_map, const __grid_constant__ CUtensorMap k_map,
                   const __grid_constant__ CUtensorMap v_map, const Params p) {
#ifdef EMBER_SM90A_DEVICE
  constexpr int kBlockN = C::kBlockN, kStages = C::kStages, kBlockM = C::kBlockM;
  using Smem = SharedStorage<T, C>;
  extern __shared__ unsigned char raw[];
  // wgmma's swizzled tiles need 1024-byte alignment, which dynamic shared memory does not promise.
  Smem& sm = *reinterpret_cast<Smem*>(raw + ((1024 - smem_u32(raw) % 1024) % 1024));

  const int tid = threadIdx.x, group = tid / 128;
  const int q_block = gridDim.x - 1 - blockIdx.x;  // causal: the longest blocks start first
  const int b = blockIdx.y / p.heads, h = blockIdx.y % p.heads, hk = h / (p.heads / p.kv_heads);
  const int q0 = q_block * kBlockM;
  int n_tiles = (p.S + kBlockN - 1) / kBlockN;
  if (p.causal) n_tiles = min(n_tiles, (min(q0 + kBlockM, p.L) + kBlockN - 1) / kBlockN);

  if (tid == 0) {
    barrier_init(&sm.q_full, 1);
    for (int s = 0; s < kStages; ++s) {
      barrier_init(&sm.k_full[s], 1);
      barrier_init(&sm.v_full[s], 1);
      barrier_init(&sm.empty[s], C::kConsumers * 4);  // one arrival per consumer warp
    }
    barrier_init_fence();
  }
  __syncthreads();

  if (group == C::kConsumers) {  // the producer warp: one thread issues every copy
    if (tid == 128 * C::kConsumers) {
      barrier_arrive_expect(&sm.q_full, kBlockM * kRowBytes);
      load_rows(sm.q, &q_map, p.q_slot, q0, h, b, &sm.q_full);
      for (int j = 0; j < n_tiles; ++j) {
        const int s = j % kStages, round = j / kStages;
        if (round > 0) barrier_wait(&sm.empty[s], (round - 1) & 1);  // every consumer is done with it
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
  const uint32_t q_addr = smem_u32(sm.q) + group * kGroupRows * kRowBytes;
  auto needs_mask = [&](int j) {
    const int c0 = j * kBlockN;
    return c0 + kBlockN > p.S || (p.causal && c0 + kBlockN - 1 > warp_row0);
  };

  float o[32] = {};
  RowState state;
  float alpha[2];
  float s[kBlockN / 2];  // no need to clear: each product's first step overwrites (accumulate = 0)
  uint32_t pf[kBlockN / 16][4];
  barrier_wait(&sm.q_full, 0);

  if constexpr (C::kPipelined) {
    // Tile 0's scores and probabilities; then for each later tile j: issue S_j, rescale O for
    // tile j − 1's maximum while that runs, issue P_{j-1}·V_{j-1}, and take the softmax of S_j
    // while the second product runs; release tile j − 1 once both are in.
    constexpr int kTurnThreads = 256;  // ping-pong: both consumer groups meet at each turn
    if constexpr (C::kPingpong)
      if (group == 1) named_barrier_arrive(1, kTurnThreads);  // group 0 takes the first turn
    barrier_wait(&sm.k_full[0], 0);
    fence_registers(s);
    wgmma_fence();
    issue_ss<T, kBlockN>(s, q_addr, smem_u32(sm.k[0]));
    wgmma_commit();
    wgmma_wait<0>();
    fence_registers(s);
    if (needs_mask(0)) mask_scores(s, 0, row, t, p);
    online_softmax(s, state, p.scale_log2, alpha);
    pack_fragments<T, kBlockN>(pf, s);
    for (int j = 1; j < n_tiles; ++j) {
      const int st = j % kStages, prev = (j - 1) % kStages;
      barrier_wait(&sm.k_full[st], (j / kStages) & 1);
      if constexpr (C::kPingpong) named_barrier_sync(1 + group, kTurnThreads);
      fence_registers(s);
      wgmma_fence();
      issue_ss<T, kBlockN>(s, q_addr, smem_u32(sm.k[st]));
      wgmma_commit();
      rescale(o, alpha);
      barrier_wait(&sm.v_full[prev], ((j - 1) / kStages) & 1);
      fence_registers(o);
      wgmma_fence();
      issue_rs<T, kBlockN>(o, pf, smem_u32(sm.v[prev]));
      wgmma_commit();
      if constexpr (C::kPingpong) named_barrier_arrive(2 - group, kTurnThreads);  // the other group's turn
      wgmma_wait<1>();  // the scores are in
      fence_registers(s);
      if (needs_mask(j)) mask_scores(s, j * kBlockN, row, t, p);
      online_softmax(s, state, p.scale_log2, alpha);
      wgmma_wait<0>();  // P_{j-1}·V_{j-1} is in: tile j − 1 is free
      fence_registers(o);
      if (lane == 0) barrier_arrive(&sm.empty[prev]);
      pack_fragments<T, kBlockN>(pf, s);
    }
    if (n_tiles > 0) {
      const int last = (n_tiles - 1) % kStages;
      rescale(o, alpha);
      barrier_wait(&sm.v_full[last], ((n_tiles - 1) / kStages) & 1);
      fence_registers(o);
      wgmma_fence();
      issue_rs<T, kBlockN>(o, pf, smem_u32(sm.v[last]));
      wgmma_commit();
      wgmma_wait<0>();
      fence_registers(o);
      if (lane == 0) barrier_arrive(&sm.empty[last]);
    }
  } else {
    for (int j = 0; j < n_tiles; ++j) {
      const int st = j % kStages;
      const uint32_t parity = (j / kStages) & 1;
      barrier_wait(&sm.k_full[st], parity);
      fence_registers(s);
      wgmma_fence();
      issue_ss<T, kBlockN>(s, q_addr, smem_u32(sm.k[st]));
      wgmma_commit();
      wgmma_wait<0>();
      fence_registers(s);
      if (needs_mask(j)) mask_scores(s, j * kBlockN, row, t, p);
      online_softmax(s, state, p.scale_log2, alpha);
      rescale(o, alpha);
      pack_fragments<T, kBlockN>(pf, s);
      barrier_wait(&sm.v_full[st], parity);
      fence_registers(o);
      wgmma_fence();
      issue_rs<T, kBlockN>(o, pf, smem_u32(sm.v[st]));
      wgmma_commit();
      wgmma_wait<0>();
      fence_registers(o);
      if (lane == 0) barrier_arrive(&sm.empty[st]);
    }
  }

  T* out = static_cast<T*>(p.o) + b * p.o_batch + h * p.o_head;
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    float l = state.l[half];
    l += __shfl_xor_sync(0xffffffffu, l, 1);
    l += __shfl_xor_sync(0xffffffffu, l, 2);
    const float inv = l > 0 ? 1.f / l : 0.f;
    const int r = row + half * 8;
    if (r >= p.L) continue;
    if (t == 0)
      p.lse[int64_t{blockIdx.y} * p.L + r] =
          l > 0 ? (state.m[half] * p.scale_log2 + log2f(l)) * kLn2 : -INFINITY;
    T* dst = out + int64_t{r} * p.o_row;
#pragma unroll
    for (int dt = 0; dt < kD / 8; ++dt)
      *reinterpret_cast<uint32_t*>(dst + dt * 8 + 2 * t) =
          flash::pack2<T>(o[4 * dt + 2 * half] * inv, o[4 * dt + 2 * half + 1] * inv);
  }
#else
  __trap();  // not built for sm_90a: the host never launches this (see refusal)
#endif
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Host side, shared with the backward (flash_attention_sm90_backward.cu).

namespace detail {

PFN_cuTensorMapEncodeTiled_v12000 encode_function() {
  static PFN_cuTensorMapEncodeTiled_v12000 fn = [] {
    void* f = nullptr;
    cudaDriverEntryPointQueryResult found{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault, &found) != cudaSuccess ||
        found != cudaDriverEntryPointSuccess)
      f = nullptr;
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(f);
  }();
  return fn;
}

bool make_map(const Tensor& t, int box_rows, CUtensorMap& map, int (&slot)[3]) {
  const int64_t es = static_cast<int64_t>(itemsize(t.dtype()));
  if (reinterpret_cast<uintptr_t>(t.data()) % 16 != 0) return false;
  struct Dim {
    uint64_t size, stride;
    int role;
  } dims[3] = {{static_cast<uint64_t>(t.sizes()[2]), static_cast<uint64_t>(t.strides()[2] * es), 0},
               {static_cast<uint64_t>(t.sizes()[1]), static_cast<uint64_t>(t.strides()[1] * es), 1},
               {static_cast<uint64_t>(t.sizes()[0]), static_cast<uint64_t>(t.strides()[0] * es), 2}};
  // A dim of size 1 is never stepped: give it a stride past every other so it sorts last.
  uint64_t reach = kRowBytes;
  for (const Dim& d : dims)
    if (d.size > 1) reach = std::max(reach, d.stride * d.size);
  for (Dim& d : dims) {
    if (d.size == 1) d.stride = (reach + 15) / 16 * 16;
    if (d.stride % 16 != 0 || d.stride == 0 || d.stride >= (uint64_t{1} << 40)) return false;
  }
  std::stable_sort(std::begin(dims), std::end(dims), [](const Dim& a, const Dim& b) { return a.stride < b.stride; });
  cuuint64_t size[4] = {kD, dims[0].size, dims[1].size, dims[2].size};
  cuuint64_t stride[3] = {dims[0].stride, dims[1].stride, dims[2].stride};
  cuuint32_t box[4] = {kD, 1, 1, 1};
  const cuuint32_t unit[4] = {1, 1, 1, 1};
  for (int i = 0; i < 3; ++i) {
    slot[dims[i].role] = i;
    if (dims[i].role == 0) box[1 + i] = static_cast<cuuint32_t>(box_rows);
  }
  const CUtensorMapDataType type =
      t.dtype() == kBFloat16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16;
  return encode_function()(&map, type, 4, const_cast<void*>(t.data()), size, stride, box, unit,
                           CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                           CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

const char* variant() {
  static const char* v = [] {
    const char* e = std::getenv("EMBER_FLASH_SM90");
    return e ? e : "";
  }();
  return v;
}

std::string device_refusal(const Tensor& q) {
#ifndef EMBER_HAVE_SM90A
  (void)q;
  return "this build has no sm_90a code (build with -Dcuda-arch=90a)";
#else
  if (std::strcmp(variant(), "0") == 0) return "turned off by EMBER_FLASH_SM90=0";
  const cudaDeviceProp& prop = cuda_detail::device_prop(q.device().index);
  if (prop.major != 9 || prop.minor != 0) return "the device is not sm_90";
  if (q.sizes()[3] != kD) return "head dim is not 64";
  if (q.dtype() != kBFloat16 && q.dtype() != kFloat16) return "dtype is not a half type";
  if (!encode_function()) return "the driver has no cuTensorMapEncodeTiled";
  return "";
#endif
}

void allow_shared_memory(const void* kernel, size_t bytes, int device) {
  static std::mutex mutex;
  static std::set<std::pair<const void*, int>> raised;
  std::lock_guard<std::mutex> lock(mutex);
  if (raised.emplace(kernel, device).second)
    EMBER_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
}

}  // namespace detail

namespace {

using namespace detail;

/// Launches one kernel variant on `p` with the maps made for its tile sizes (false where the
/// copy engine refused a layout: nothing launched).
template <typename T, typename C>
bool launch(Params& p, const Tensor& q, const Tensor& k, const Tensor& v, int batch, cudaStream_t stream,
            int device) {
  CUtensorMap qm, km, vm;
  if (!make_map(q, C::kBlockM, qm, p.q_slot) || !make_map(k, C::kBlockN, km, p.k_slot) ||
      !make_map(v, C::kBlockN, vm, p.v_slot))
    return false;
  const dim3 grid(static_cast<unsigned>((p.L + C::kBlockM - 1) / C::kBlockM), static_cast<unsigned>(batch * p.heads));
  if (p.L == 0 || grid.y == 0) return true;
  auto kernel = forward_kernel<T, C>;
  const size_t smem = sizeof(SharedStorage<T, C>) + 1024;
  allow_shared_memory(reinterpret_cast<const void*>(kernel), smem, device);
  kernel<<<grid, C::kThreads, smem, stream>>>(qm, km, vm, p);
  EMBER_CUDA_CHECK_LAUNCH();
  return true;
}

}  // namespace

std::string refusal(const Tensor& q, const Tensor& k, const Tensor& v) {
  std::string why = detail::device_refusal(q);
  if (!why.empty()) return why;
  CUtensorMap map;
  int slot[3];
  for (const Tensor* t : {&q, &k, &v})
    if (!detail::make_map(*t, 64, map, slot)) return "a layout the tensor memory accelerator cannot read";
  return "";
}

bool forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, float* lse, bool causal,
             double scale, cudaStream_t stream) {
  if (!detail::device_refusal(q).empty() || !(scale > 0)) return false;  // the softmax takes its maximum before scaling
  Params p;
  p.o = out.data();
  p.o_batch = out.strides()[0];
  p.o_head = out.strides()[1];
  p.o_row = out.strides()[2];
  p.lse = lse;
  p.heads = static_cast<int>(q.sizes()[1]);
  p.kv_heads = static_cast<int>(k.sizes()[1]);
  p.L = static_cast<int>(q.sizes()[2]);
  p.S = static_cast<int>(k.sizes()[2]);
  p.scale_log2 = static_cast<float>(scale * 1.4426950408889634);
  p.causal = causal;
  const int device = q.device().index;
  const int batch = static_cast<int>(q.sizes()[0]);
  // The default, the fastest measured on an H200 (bench/RESULTS.md): 128-key tiles in three
  // stages, two consumer groups, pipelined. Variants for benchmarking (EMBER_FLASH_SM90, each
  // run by tools/gpu-attention.sh through the attention tests too): s2, two stages; n128s, not
  // pipelined; pp, with ping-pong; n64s, 64-key tiles, two blocks per multiprocessor, not
  // pipelined.
  const std::string which = detail::variant();
  auto run = [&]<typename T>() {
    if (which == "s2") return launch<T, Config<128, 2, 2, 1, true>>(p, q, k, v, batch, stream, device);
    if (which == "n128s") return launch<T, Config<128, 2, 2, 1, false>>(p, q, k, v, batch, stream, device);
    if (which == "pp") return launch<T, Config<128, 2, 2, 1, true, true>>(p, q, k, v, batch, stream, device);
    if (which == "n64s") return launch<T, Config<64, 2, 2, 2, false>>(p, q, k, v, batch, stream, device);
    return launch<T, Config<128, 3, 2, 1, true>>(p, q, k, v, batch, stream, device);
  };
  return q.dtype() == kBFloat16 ? run.template operator()<__nv_bfloat16>() : run.template operator()<__half>();
}

}  // namespace ember::flash_sm90

namespace ember {

std::string flash_attention_sm90_refusal(const Tensor& q, const Tensor& k, const Tensor& v) {
  return flash_sm90::refusal(q, k, v);
}

}  // namespace ember
