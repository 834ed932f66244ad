// The fused attention forward on Hopper (see flash_attention_sm90.h). One block takes 128 query
// rows of one head with three warp groups: the first only issues the tensor memory
// accelerator's copies (Q once, then each key/value tile into a ring of shared-memory stages,
// each stage's readiness and release tracked by mbarriers); the other two take 64 query rows
// each and, per key tile, compute S = Q·Kᵀ with wgmma from shared memory, run the online
// softmax on S in registers, and add P·V with P straight from registers. The consumer groups
// never wait for each other, so one group's softmax (exponentials on the special-function
// unit) overlaps the other's matrix products. The scheme and the numerics are those of
// flash_attention.cu's forward (same masking, same log-sum-exp), so its backward applies.
#include "ops/cuda/flash_attention_sm90.h"

#include <cudaTypedefs.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>
#include <utility>

#include "ops/cuda/flash_mma.cuh"
#include "ops/cuda/hopper.cuh"
#include "runtime/cuda/runtime.h"
#include "runtime/error.h"

namespace ember::flash_sm90 {

namespace {

using namespace hopper;

constexpr int kD = 64;                  // head dim: one 128-byte swizzled row of a half type
constexpr int kGroupRows = 64;          // query rows of one consumer warp group (wgmma's M)
constexpr int kConsumers = 2;           // consumer warp groups per block
constexpr int kBlockM = kGroupRows * kConsumers;
constexpr int kThreads = 128 * (kConsumers + 1);
constexpr int kRowBytes = kD * 2;       // 128: one swizzle row
constexpr float kLn2 = 0.6931471805599453f;

struct Params {
  void* o = nullptr;
  int64_t o_batch = 0, o_head = 0, o_row = 0;  // element strides of the output
  float* lse = nullptr;                        // [B, H, L]
  int heads = 0, kv_heads = 0, L = 0, S = 0;
  float scale_log2 = 0;
  bool causal = false;
  // Where each of (row, head, batch) sits among a tensor map's outer coordinates: the maps order
  // their dims by stride, as the copy engine requires.
  int q_slot[3] = {0, 1, 2}, k_slot[3] = {0, 1, 2}, v_slot[3] = {0, 1, 2};
};

template <typename T, int kBlockN, int kStages>
struct SharedStorage {
  alignas(1024) T q[kBlockM * kD];
  alignas(1024) T k[kStages][kBlockN * kD];
  alignas(1024) T v[kStages][kBlockN * kD];
  uint64_t q_full, k_full[kStages], v_full[kStages], empty[kStages];
};

__device__ __forceinline__ void load_rows(void* dst, const CUtensorMap* map, const int (&slot)[3], int row, int head,
                                          int batch, uint64_t* bar) {
  int c[3];
  c[slot[0]] = row;
  c[slot[1]] = head;
  c[slot[2]] = batch;
  tma_load_4d(dst, map, 0, c[0], c[1], c[2], bar);
}

template <typename T, int kBlockN, int kStages>
__global__ void __launch_bounds__(kThreads, 1)
    forward_kernel(const __grid_constant__ CUtensorMap q_map, const __grid_constant__ CUtensorMap k_map,
                   const __grid_constant__ CUtensorMap v_map, const Params p) {
#ifdef EMBER_SM90A_DEVICE
  using Smem = SharedStorage<T, kBlockN, kStages>;
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
      barrier_init(&sm.empty[s], kConsumers * 4);  // one arrival per consumer warp
    }
    barrier_init_fence();
  }
  __syncthreads();

  if (group == 0) {  // the producer: one thread issues every copy
    if (tid == 0) {
      barrier_arrive_expect(&sm.q_full, kBlockM * kRowBytes);
      load_rows(sm.q, &q_map, p.q_slot, q0, h, b, &sm.q_full);
      for (int j = 0; j < n_tiles; ++j) {
        const int s = j % kStages, round = j / kStages;
        if (round > 0) barrier_wait(&sm.empty[s], (round - 1) & 1);  // both groups are done with it
        barrier_arrive_expect(&sm.k_full[s], kBlockN * kRowBytes);
        load_rows(sm.k[s], &k_map, p.k_slot, j * kBlockN, hk, b, &sm.k_full[s]);
        barrier_arrive_expect(&sm.v_full[s], kBlockN * kRowBytes);
        load_rows(sm.v[s], &v_map, p.v_slot, j * kBlockN, hk, b, &sm.v_full[s]);
      }
    }
    return;
  }

  const int consumer = group - 1, lane = tid & 31, warp = (tid & 127) >> 5, g = lane >> 2, t = lane & 3;
  const int warp_row0 = q0 + consumer * kGroupRows + warp * 16;
  const int row = warp_row0 + g;  // this thread's rows: row and row + 8
  const uint32_t q_addr = smem_u32(sm.q) + consumer * kGroupRows * kRowBytes;

  constexpr int kNT = kBlockN / 8;  // n8 blocks of S per thread
  float o[32] = {};
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0, 0};
  barrier_wait(&sm.q_full, 0);

  for (int j = 0; j < n_tiles; ++j) {
    const int st = j % kStages;
    const uint32_t parity = (j / kStages) & 1;

    // S = Q·Kᵀ over the head dim in four k16 steps.
    barrier_wait(&sm.k_full[st], parity);
    const uint32_t k_addr = smem_u32(sm.k[st]);
    float s[kNT * 4];  // no need to clear: the first step overwrites (accumulate = 0)
    fence_registers(s);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < kD / 16; ++kk) {
      if constexpr (kBlockN == 128)
        wgmma_ss_n128<T>(s, descriptor(q_addr + kk * 32), descriptor(k_addr + kk * 32), kk);
      else
        wgmma_ss_n64<T>(s, descriptor(q_addr + kk * 32), descriptor(k_addr + kk * 32), kk);
    }
    wgmma_commit();
    wgmma_wait<0>();
    fence_registers(s);

    // The online softmax, in base 2 with the scale folded in.
    const int c0 = j * kBlockN;
    const bool masked = c0 + kBlockN > p.S || (p.causal && c0 + kBlockN - 1 > warp_row0);
#pragma unroll
    for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        float x = s[4 * nt + e] * p.scale_log2;
        if (masked) {
          const int col = c0 + nt * 8 + 2 * t + (e & 1), r = row + (e >> 1) * 8;
          if (col >= p.S || (p.causal && col > r)) x = -INFINITY;
        }
        s[4 * nt + e] = x;
      }
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      float mx = -INFINITY;
#pragma unroll
      for (int nt = 0; nt < kNT; ++nt) mx = fmaxf(mx, fmaxf(s[4 * nt + 2 * half], s[4 * nt + 2 * half + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float m_new = fmaxf(m[half], mx);
      const float base = m_new == -INFINITY ? 0.f : m_new;  // a row with nothing visible yet
      const float alpha = exp2f(m[half] - base);
      m[half] = m_new;
      float sum = 0;
#pragma unroll
      for (int nt = 0; nt < kNT; ++nt) {
        s[4 * nt + 2 * half] = exp2f(s[4 * nt + 2 * half] - base);
        s[4 * nt + 2 * half + 1] = exp2f(s[4 * nt + 2 * half + 1] - base);
        sum += s[4 * nt + 2 * half] + s[4 * nt + 2 * half + 1];
      }
      l[half] = l[half] * alpha + sum;
#pragma unroll
      for (int dt = 0; dt < kD / 8; ++dt) {
        o[4 * dt + 2 * half] *= alpha;
        o[4 * dt + 2 * half + 1] *= alpha;
      }
    }
    // P as wgmma A fragments: n8 blocks 2kk and 2kk + 1 of S are the k16 step kk.
    uint32_t pf[kBlockN / 16][4];
#pragma unroll
    for (int kk = 0; kk < kBlockN / 16; ++kk)
#pragma unroll
      for (int r = 0; r < 4; ++r) pf[kk][r] = flash::pack2<T>(s[8 * kk + 2 * r], s[8 * kk + 2 * r + 1]);

    // O += P·V, V's tile MN-major (its rows run along the output's columns).
    barrier_wait(&sm.v_full[st], parity);
    const uint32_t v_addr = smem_u32(sm.v[st]);
    fence_registers(o);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < kBlockN / 16; ++kk) wgmma_rs_n64<T>(o, pf[kk], descriptor(v_addr + kk * 16 * kRowBytes));
    wgmma_commit();
    wgmma_wait<0>();
    fence_registers(o);
    if (lane == 0) barrier_arrive(&sm.empty[st]);
  }

  T* out = static_cast<T*>(p.o) + b * p.o_batch + h * p.o_head;
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    l[half] += __shfl_xor_sync(0xffffffffu, l[half], 1);
    l[half] += __shfl_xor_sync(0xffffffffu, l[half], 2);
    const float inv = l[half] > 0 ? 1.f / l[half] : 0.f;
    const int r = row + half * 8;
    if (r >= p.L) continue;
    if (t == 0)
      p.lse[int64_t{blockIdx.y} * p.L + r] = l[half] > 0 ? (m[half] + log2f(l[half])) * kLn2 : -INFINITY;
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

// ---------------------------------------------------------------------------------------------
// Host side.

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

/// A tensor map of a [B, H, rows, 64] operand whose box is `box_rows` rows of one head, its
/// outer dims ordered by stride; slot[i] says where (row, head, batch)[i] went. False where the
/// copy engine cannot read the layout (strides not multiples of 16 bytes, an unaligned start).
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

/// The variant EMBER_FLASH_SM90 names: "0" none, "n64" 64-key tiles, "s3" three stages, else the
/// default (128-key tiles, two stages).
const char* variant() {
  static const char* v = [] {
    const char* e = std::getenv("EMBER_FLASH_SM90");
    return e ? e : "";
  }();
  return v;
}

template <typename T, int kBlockN, int kStages>
void launch(const Params& p, const CUtensorMap& qm, const CUtensorMap& km, const CUtensorMap& vm, dim3 grid,
            cudaStream_t stream, int device) {
  auto kernel = forward_kernel<T, kBlockN, kStages>;
  const size_t smem = sizeof(SharedStorage<T, kBlockN, kStages>) + 1024;
  {
    static std::mutex mutex;
    static std::set<int> raised;
    std::lock_guard<std::mutex> lock(mutex);
    if (raised.insert(device).second)
      EMBER_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  }
  kernel<<<grid, kThreads, smem, stream>>>(qm, km, vm, p);
  EMBER_CUDA_CHECK_LAUNCH();
}

}  // namespace

namespace {

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

}  // namespace

std::string refusal(const Tensor& q, const Tensor& k, const Tensor& v) {
  std::string why = device_refusal(q);
  if (!why.empty()) return why;
  CUtensorMap map;
  int slot[3];
  for (const Tensor* t : {&q, &k, &v})
    if (!make_map(*t, 64, map, slot)) return "a layout the tensor memory accelerator cannot read";
  return "";
}

bool forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, float* lse, bool causal,
             double scale, cudaStream_t stream) {
  if (!device_refusal(q).empty()) return false;
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
  const bool small_tiles = std::strcmp(variant(), "n64") == 0, three_stages = std::strcmp(variant(), "s3") == 0;
  const int key_rows = small_tiles ? 64 : 128;
  CUtensorMap qm, km, vm;
  if (!make_map(q, kBlockM, qm, p.q_slot) || !make_map(k, key_rows, km, p.k_slot) || !make_map(v, key_rows, vm, p.v_slot))
    return false;
  const dim3 grid(static_cast<unsigned>((p.L + kBlockM - 1) / kBlockM), static_cast<unsigned>(q.sizes()[0] * p.heads));
  if (p.L == 0 || grid.y == 0) return true;
  const int device = q.device().index;
  auto run = [&]<typename T>() {
    if (small_tiles)
      launch<T, 64, 2>(p, qm, km, vm, grid, stream, device);
    else if (three_stages)
      launch<T, 128, 3>(p, qm, km, vm, grid, stream, device);
    else
      launch<T, 128, 2>(p, qm, km, vm, grid, stream, device);
  };
  if (q.dtype() == kBFloat16)
    run.template operator()<__nv_bfloat16>();
  else
    run.template operator()<__half>();
  return true;
}

}  // namespace ember::flash_sm90
