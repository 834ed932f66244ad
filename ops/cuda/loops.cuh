// The shared CUDA element-wise launcher: every element-wise kernel is a functor plus one call
// to `launch_elementwise`. Operand 0 is the output; inputs broadcast to its shape.
//  - Contiguous, aligned operands take a vectorised path: 16-byte loads and stores.
//  - Everything else takes a strided path over the coalesced geometry (ops/geometry.h), with
//    32-bit index math when every offset fits and 64-bit past 2^31 elements or bytes.
//  - 0-d CPU tensors (numbers such as the 2 in x * 2) are passed by value as kernel arguments,
//    never copied to the device.
#pragma once

#include <cstdint>
#include <array>
#include <cstring>
#include <cuda/std/tuple>
#include <type_traits>
#include <utility>

#include "ops/cuda/dispatch.cuh"
#include "ops/geometry.h"
#include "runtime/cuda/runtime.h"

namespace ember::cuda_ops {

inline constexpr int kBlock = 256;
inline constexpr int kMaxDims = 16;

/// Division by a fixed 32-bit divisor as a multiply-high, add and shift (the round-up method
/// of Granlund and Montgomery): the strided kernel divides by every dim's size for every
/// element, and a hardware-less 32-bit division costs tens of instructions. Exact for
/// numerators and divisors below 2^31.
struct FastDivisor {
  uint32_t divisor = 1, multiplier = 1, shift = 0;

  FastDivisor() = default;
  explicit FastDivisor(uint32_t d) : divisor(d) {
    while (shift < 32 && (uint64_t{1} << shift) < d) ++shift;
    multiplier = static_cast<uint32_t>(((uint64_t{1} << 32) * ((uint64_t{1} << shift) - d)) / d + 1);
  }
  __host__ __device__ __forceinline__ uint32_t div(uint32_t n) const {
#ifdef __CUDA_ARCH__
    const uint32_t hi = __umulhi(n, multiplier);
#else
    const uint32_t hi = static_cast<uint32_t>((uint64_t{n} * multiplier) >> 32);
#endif
    return (hi + n) >> shift;
  }
};

template <int N, typename IndexT>
struct OffsetCalc {
  // int32 offsets divide with FastDivisor; the rare int64 form divides plainly.
  static constexpr bool kFast = sizeof(IndexT) == 4;
  using Size = std::conditional_t<kFast, FastDivisor, IndexT>;
  int ndim;
  Size sizes[kMaxDims];         // innermost first
  IndexT strides[kMaxDims][N];  // bytes

  __device__ __forceinline__ void get(IndexT linear, IndexT (&off)[N]) const {
#pragma unroll
    for (int i = 0; i < N; ++i) off[i] = 0;
#pragma unroll
    for (int d = 0; d < kMaxDims; ++d) {
      if (d == ndim) break;
      IndexT idx;
      if constexpr (kFast) {
        const IndexT q = static_cast<IndexT>(sizes[d].div(static_cast<uint32_t>(linear)));
        idx = linear - q * static_cast<IndexT>(sizes[d].divisor);
        linear = q;
      } else {
        idx = linear % sizes[d];
        linear /= sizes[d];
      }
#pragma unroll
      for (int i = 0; i < N; ++i) off[i] += idx * strides[d][i];
    }
  }
};

/// Pointers of the operands, and the values of inputs that are CPU numbers.
template <int N>
struct Operands {
  char* ptr[N];
  uint64_t scalar_raw[N];  // raw bits of scalar inputs, by input slot
  uint32_t scalar_mask = 0;  // bit k: input k (operand k + 1) is a scalar
};

template <typename T, int N>
__device__ __forceinline__ T load_scalar(const Operands<N>& ops, int k) {
  T v;
  memcpy(&v, &ops.scalar_raw[k + 1], sizeof(T));
  return v;
}

template <typename T, typename IndexT, int N>
__device__ __forceinline__ T load_input(const Operands<N>& ops, int k, IndexT off) {
  if (ops.scalar_mask & (1u << k)) return load_scalar<T>(ops, k);
  return *reinterpret_cast<const T*>(ops.ptr[k + 1] + off);
}

template <typename T, int V>
struct alignas(sizeof(T) * V) Vec {
  T v[V];
};

template <int V, typename T, int N>
__device__ __forceinline__ Vec<T, V> load_vec(const Operands<N>& ops, int k, int64_t v) {
  if (ops.scalar_mask & (1u << k)) {
    Vec<T, V> r;
    T s = load_scalar<T>(ops, k);
#pragma unroll
    for (int j = 0; j < V; ++j) r.v[j] = s;
    return r;
  }
  return reinterpret_cast<const Vec<T, V>*>(ops.ptr[k + 1])[v];
}

/// The element types of one element-wise kernel: Out = f(In...). (A __global__ template may
/// have one parameter pack only, at the end, so the types travel as one struct.)
template <typename Out, typename... In>
struct Sig {
  static constexpr int N = 1 + sizeof...(In);

  template <typename IndexT, typename F, size_t... I>
  __device__ __forceinline__ static void apply(const Operands<N>& ops, const IndexT (&off)[N], const F& f,
                                               std::index_sequence<I...>) {
    *reinterpret_cast<Out*>(ops.ptr[0] + off[0]) = f(load_input<In>(ops, static_cast<int>(I), off[I + 1])...);
  }
  template <typename IndexT, typename F>
  __device__ __forceinline__ static void apply(const Operands<N>& ops, const IndexT (&off)[N], const F& f) {
    apply(ops, off, f, std::index_sequence_for<In...>{});
  }

  // Loads and stores apart, so a thread can have several elements' loads in flight.
  using Inputs = ::cuda::std::tuple<In...>;
  template <typename IndexT, size_t... I>
  __device__ __forceinline__ static Inputs load(const Operands<N>& ops, const IndexT (&off)[N],
                                                std::index_sequence<I...>) {
    return Inputs(load_input<In>(ops, static_cast<int>(I), off[I + 1])...);
  }
  template <typename IndexT>
  __device__ __forceinline__ static Inputs load(const Operands<N>& ops, const IndexT (&off)[N]) {
    return load(ops, off, std::index_sequence_for<In...>{});
  }
  template <typename IndexT, typename F, size_t... I>
  __device__ __forceinline__ static void store(const Operands<N>& ops, const IndexT (&off)[N], const F& f,
                                               const Inputs& in, std::index_sequence<I...>) {
    *reinterpret_cast<Out*>(ops.ptr[0] + off[0]) = f(::cuda::std::get<I>(in)...);
  }
  template <typename IndexT, typename F>
  __device__ __forceinline__ static void store(const Operands<N>& ops, const IndexT (&off)[N], const F& f,
                                               const Inputs& in) {
    store(ops, off, f, in, std::index_sequence_for<In...>{});
  }

  template <int V, typename F, size_t... I>
  __device__ __forceinline__ static void apply_vec(const Operands<N>& ops, int64_t v, const F& f,
                                                   std::index_sequence<I...>) {
    ::cuda::std::tuple<Vec<In, V>...> inputs(load_vec<V, In>(ops, static_cast<int>(I), v)...);
    Vec<Out, V> r;
#pragma unroll
    for (int j = 0; j < V; ++j) r.v[j] = f(::cuda::std::get<I>(inputs).v[j]...);
    reinterpret_cast<Vec<Out, V>*>(ops.ptr[0])[v] = r;
  }
  template <int V, typename F>
  __device__ __forceinline__ static void apply_vec(const Operands<N>& ops, int64_t v, const F& f) {
    apply_vec<V>(ops, v, f, std::index_sequence_for<In...>{});
  }

  // Byte offsets of element i in contiguous operands.
  __device__ __forceinline__ static void contiguous_offsets(int64_t i, int64_t (&off)[N]) {
    constexpr int64_t sizes[N] = {sizeof(Out), sizeof(In)...};
#pragma unroll
    for (int k = 0; k < N; ++k) off[k] = i * sizes[k];
  }
};

/// Elements per thread per step of the strided kernel (int32 offsets): their loads are issued
/// together. The rare int64 form (past 2^31 elements) is not unrolled, to keep compile times and
/// binary size down.
constexpr int kStridedUnroll = 4;

template <typename IndexT, typename S, typename F>
__global__ void __launch_bounds__(kBlock) strided_kernel(Operands<S::N> ops, OffsetCalc<S::N, IndexT> calc, IndexT n, F f) {
  constexpr int U = sizeof(IndexT) == 4 ? kStridedUnroll : 1;
  // The element counter is 64-bit even for int32 offsets: base + step may pass 2^31.
  const int64_t tile = int64_t{kBlock} * U;
  const int64_t step = static_cast<int64_t>(gridDim.x) * tile;
  for (int64_t base = static_cast<int64_t>(blockIdx.x) * tile + threadIdx.x; base < n; base += step) {
    IndexT off[U][S::N];
    typename S::Inputs in[U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int64_t i = base + u * kBlock;
      if (i < n) {
        calc.get(static_cast<IndexT>(i), off[u]);
        in[u] = S::load(ops, off[u]);
      }
    }
#pragma unroll
    for (int u = 0; u < U; ++u)
      if (base + u * kBlock < n) S::store(ops, off[u], f, in[u]);
  }
}

template <int V, typename S, typename F>
__global__ void __launch_bounds__(kBlock) vector_kernel(Operands<S::N> ops, int64_t n, F f) {
  const int64_t nvec = n / V;
  const int64_t step = static_cast<int64_t>(gridDim.x) * kBlock;
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * kBlock + threadIdx.x;
  for (int64_t v = tid; v < nvec; v += step) S::template apply_vec<V>(ops, v, f);
  for (int64_t i = nvec * V + tid; i < n; i += step) {
    int64_t off[S::N];
    S::contiguous_offsets(i, off);
    S::apply(ops, off, f);
  }
}

inline int grid_for(int64_t work_items, int device) {
  const int64_t sms = cuda_detail::device_prop(device).multiProcessorCount;
  int64_t blocks = (work_items + kBlock - 1) / kBlock;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(blocks, sms * 32)));
}

template <int N, typename IndexT>
OffsetCalc<N, IndexT> make_calc(const Geometry<N>& g) {
  OffsetCalc<N, IndexT> c{};
  c.ndim = static_cast<int>(g.sizes.size());
  for (int d = 0; d < c.ndim; ++d) {
    int src = c.ndim - 1 - d;  // innermost first
    if constexpr (OffsetCalc<N, IndexT>::kFast) c.sizes[d] = FastDivisor(static_cast<uint32_t>(g.sizes[src]));
    else c.sizes[d] = static_cast<IndexT>(g.sizes[src]);
    for (int i = 0; i < N; ++i) c.strides[d][i] = static_cast<IndexT>(g.strides[src][i]);
  }
  return c;
}

// True when every offset of every operand, and the element count, fit in int32.
template <int N>
bool fits_int32(const Geometry<N>& g) {
  if (g.numel >= (int64_t{1} << 31)) return false;
  for (int i = 0; i < N; ++i) {
    int64_t reach = 0;
    for (size_t d = 0; d < g.sizes.size(); ++d) reach += (g.sizes[d] - 1) * std::abs(g.strides[d][i]);
    if (reach >= (int64_t{1} << 31)) return false;
  }
  return true;
}

template <typename T>
constexpr size_t max_size() {
  return sizeof(T);
}
template <typename T, typename U, typename... R>
constexpr size_t max_size() {
  return std::max(sizeof(T), max_size<U, R...>());
}

/// out[i] = f(in[0][i], in[1][i], ...) over out's shape on out's device and current stream.
/// The element types must match the tensors' dtypes; a 0-d CPU input is read on the host.
template <typename Out, typename... In, typename F>
void launch_elementwise(const Tensor& out, const std::array<Tensor, sizeof...(In)>& in, const F& f) {
  constexpr int N = 1 + sizeof...(In);
  constexpr size_t sizes[N] = {sizeof(Out), sizeof(In)...};
  Operands<N> ops{};
  std::array<const Tensor*, N> tensors{&out};
  for (int k = 0; k < static_cast<int>(sizeof...(In)); ++k) {
    tensors[k + 1] = &in[k];
    if (in[k].is_cpu()) {
      EMBER_ASSERT(in[k].dim() == 0, "only 0-d CPU tensors may join a CUDA kernel");
      std::memcpy(&ops.scalar_raw[k + 1], in[k].data(), sizes[k + 1]);
      ops.scalar_mask |= 1u << k;
    }
  }
  Geometry<N> g = make_geometry<N>(out.sizes(), tensors);
  if (g.numel == 0) return;
  for (int i = 0; i < N; ++i) ops.ptr[i] = g.data[i];
  const int device = out.device().index;
  cuda::DeviceGuard guard(device);
  cudaStream_t s = cuda_detail::stream(device);

  constexpr int V = static_cast<int>(16 / max_size<Out, In...>()) > 0 ? static_cast<int>(16 / max_size<Out, In...>()) : 1;
  bool vectorizable = g.sizes.size() == 1;
  for (int i = 0; i < N && vectorizable; ++i) {
    const bool scalar = i > 0 && (ops.scalar_mask & (1u << (i - 1)));
    if (scalar) continue;
    vectorizable = g.strides[0][i] == static_cast<int64_t>(sizes[i]) &&
                   reinterpret_cast<uintptr_t>(ops.ptr[i]) % (sizes[i] * V) == 0;
  }
  if (vectorizable) {
    vector_kernel<V, Sig<Out, In...>><<<grid_for((g.numel + V - 1) / V, device), kBlock, 0, s>>>(ops, g.numel, f);
  } else {
    EMBER_CHECK(static_cast<int>(g.sizes.size()) <= kMaxDims, Unsupported, "[cuda] element-wise op over ",
                g.sizes.size(), " non-mergeable dims (at most ", kMaxDims, ")");
    if (fits_int32(g)) {
      strided_kernel<int32_t, Sig<Out, In...>><<<grid_for(g.numel / kStridedUnroll + 1, device), kBlock, 0, s>>>(
          ops, make_calc<N, int32_t>(g), static_cast<int32_t>(g.numel), f);
    } else {
      strided_kernel<int64_t, Sig<Out, In...>><<<grid_for(g.numel, device), kBlock, 0, s>>>(
          ops, make_calc<N, int64_t>(g), g.numel, f);
    }
  }
  EMBER_CUDA_CHECK_LAUNCH();
}

/// Pointer form for kernels that index through memory (gather, index_select): calls
/// f(ptrs) with each operand's element address, over `shape`, no vectorisation.
template <int N, typename F, typename IndexT>
__global__ void __launch_bounds__(kBlock) pointer_kernel(Operands<N> ops, OffsetCalc<N, IndexT> calc, IndexT n, F f) {
  const IndexT step = static_cast<IndexT>(gridDim.x) * kBlock;
  for (IndexT i = static_cast<IndexT>(blockIdx.x) * kBlock + threadIdx.x; i < n; i += step) {
    IndexT off[N];
    calc.get(i, off);
    char* p[N];
#pragma unroll
    for (int k = 0; k < N; ++k) p[k] = ops.ptr[k] + off[k];
    f(p);
  }
}

template <int N, typename F>
void launch_pointer(const Shape& shape, const std::array<const Tensor*, N>& tensors, int device, const F& f) {
  Geometry<N> g = make_geometry<N>(shape, tensors);
  if (g.numel == 0) return;
  EMBER_CHECK(static_cast<int>(g.sizes.size()) <= kMaxDims, Unsupported, "[cuda] indexing over ", g.sizes.size(),
              " non-mergeable dims (at most ", kMaxDims, ")");
  Operands<N> ops{};
  for (int i = 0; i < N; ++i) ops.ptr[i] = g.data[i];
  cuda::DeviceGuard guard(device);
  cudaStream_t s = cuda_detail::stream(device);
  // Offsets computed in int64: the indexed dim adds offsets the geometry does not bound.
  pointer_kernel<N><<<grid_for(g.numel, device), kBlock, 0, s>>>(ops, make_calc<N, int64_t>(g), g.numel, f);
  EMBER_CUDA_CHECK_LAUNCH();
}

}  // namespace ember::cuda_ops
