// CUDA reductions. One kernel serves every reducer of reduce_functors.h:
//  - each output element is reduced by a group of G threads (G = 256 or 32 when the reduced
//    elements are contiguous, G = 1 otherwise, so neighbouring threads read neighbouring
//    outputs and loads stay coalesced);
//  - when there are too few outputs to fill the GPU, the reduced range is cut into S slices
//    (blockIdx.y), each slice writes a partial, and a second kernel combines the partials of
//    each output in slice order.
// Thread-to-element assignment, tree shapes and slice order depend only on the shapes and the
// device's multiprocessor count, so results are the same bits run to run.
#include <algorithm>
#include <numeric>

#include "ops/cuda/loops.cuh"
#include "ops/reduce.h"
#include "ops/reduce_functors.h"
#include "ops/view.h"

namespace ember {

namespace {

using cuda_ops::convert;
using cuda_ops::kBlock;
using cuda_ops::kMaxDims;

struct ReduceCalc {
  int kept_ndim, red_ndim;
  int64_t kept_sizes[kMaxDims], kept_strides[kMaxDims];  // innermost first, bytes
  int64_t red_sizes[kMaxDims], red_strides[kMaxDims];

  __device__ __forceinline__ int64_t kept_offset(int64_t o) const {
    int64_t off = 0;
    for (int d = 0; d < kept_ndim; ++d) {
      off += (o % kept_sizes[d]) * kept_strides[d];
      o /= kept_sizes[d];
    }
    return off;
  }
  __device__ __forceinline__ int64_t red_offset(int64_t r) const {
    if (red_ndim == 1) return r * red_strides[0];
    int64_t off = 0;
    for (int d = 0; d < red_ndim; ++d) {
      off += (r % red_sizes[d]) * red_strides[d];
      r /= red_sizes[d];
    }
    return off;
  }
};

template <typename T>
__device__ __forceinline__ T shfl_down(T v, int delta) {
  constexpr int W = (sizeof(T) + 3) / 4;
  int words[W] = {};
  memcpy(words, &v, sizeof(T));
#pragma unroll
  for (int i = 0; i < W; ++i) words[i] = __shfl_down_sync(0xffffffffu, words[i], delta);
  memcpy(&v, words, sizeof(T));
  return v;
}

// Combines the accumulators of G consecutive threads (G in {1, 32, kBlock}); the result is
// valid in the group's first thread.
template <typename R, typename Acc>
__device__ Acc group_reduce(Acc acc, int G, const R& r) {
  if (G == 1) return acc;
  for (int d = 16; d > 0; d >>= 1) acc = r.combine(acc, shfl_down(acc, d));
  if (G == 32) return acc;
  __shared__ alignas(16) char smem[(kBlock / 32) * sizeof(Acc)];
  Acc* warp_acc = reinterpret_cast<Acc*>(smem);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) warp_acc[warp] = acc;
  __syncthreads();
  if (warp == 0) {
    acc = lane < kBlock / 32 ? warp_acc[lane] : r.identity();
    for (int d = (kBlock / 32) / 2; d > 0; d >>= 1) acc = r.combine(acc, shfl_down(acc, d));
  }
  return acc;
}

// Steps four accumulators over [i, end) of a row, G elements apart, so each thread has four
// loads in flight; `at(i)` reads element i.
template <typename R, typename A, typename At>
__device__ __forceinline__ typename R::Acc reduce_range(const R& r, int64_t i, int64_t end, int G, const At& at) {
  using Acc = typename R::Acc;
  Acc a0 = r.identity(), a1 = r.identity(), a2 = r.identity(), a3 = r.identity();
  for (; i + 3 * G < end; i += 4 * G) {
    const A x0 = at(i), x1 = at(i + G), x2 = at(i + 2 * G), x3 = at(i + 3 * G);
    a0 = r.step(a0, x0, i);
    a1 = r.step(a1, x1, i + G);
    a2 = r.step(a2, x2, i + 2 * G);
    a3 = r.step(a3, x3, i + 3 * G);
  }
  for (; i < end; i += G) a0 = r.step(a0, at(i), i);
  return r.combine(r.combine(a0, a1), r.combine(a2, a3));
}

// One output element per group of G threads, over slice blockIdx.y of the reduced range.
// kContiguous: the reduced elements are one contiguous run per output (a row), read with
// 16-byte loads where the slice start is aligned.
template <typename T, bool kContiguous, typename R, typename Emit>
__global__ void __launch_bounds__(kBlock)
    reduce_kernel(const char* in, ReduceCalc c, int64_t numel_out, int64_t numel_red, int G, int64_t slice_len,
                  R r, Emit emit, typename R::Acc* partial) {
  using Acc = typename R::Acc;
  using A = cuda_ops::acc_t<T>;
  const int lane = threadIdx.x % G;
  const int64_t o = static_cast<int64_t>(blockIdx.x) * (kBlock / G) + threadIdx.x / G;
  const int64_t begin = static_cast<int64_t>(blockIdx.y) * slice_len;
  const int64_t end = begin + slice_len < numel_red ? begin + slice_len : numel_red;
  Acc acc = r.identity();
  if (o < numel_out) {
    const char* base = in + c.kept_offset(o);
    if constexpr (kContiguous) {
      const T* row = reinterpret_cast<const T*>(base);
      constexpr int V = 16 / sizeof(T) > 0 ? 16 / sizeof(T) : 1;
      using Vec = cuda_ops::Vec<T, V>;
      int64_t i = begin;
      if (V > 1 && G > 1 && reinterpret_cast<uintptr_t>(row + begin) % 16 == 0) {
        // Vector j holds elements begin + j*V .. begin + j*V + V-1; lanes take vectors G apart.
        const Vec* vec = reinterpret_cast<const Vec*>(row + begin);
        const int64_t nvec = (end - begin) / V;
        Acc a[V];
#pragma unroll
        for (int k = 0; k < V; ++k) a[k] = r.identity();
        int64_t j = lane;
        for (; j + G < nvec; j += 2 * G) {
          const Vec v0 = vec[j], v1 = vec[j + G];
#pragma unroll
          for (int k = 0; k < V; ++k) a[k] = r.step(a[k], convert<A>(v0.v[k]), begin + j * V + k);
#pragma unroll
          for (int k = 0; k < V; ++k) a[k] = r.step(a[k], convert<A>(v1.v[k]), begin + (j + G) * V + k);
        }
        if (j < nvec) {
          const Vec v0 = vec[j];
#pragma unroll
          for (int k = 0; k < V; ++k) a[k] = r.step(a[k], convert<A>(v0.v[k]), begin + j * V + k);
        }
#pragma unroll
        for (int k = 0; k < V; ++k) acc = r.combine(acc, a[k]);
        i = begin + nvec * V;
      }
      acc = r.combine(acc, reduce_range<R, A>(r, i + lane, end, G, [&](int64_t e) { return convert<A>(row[e]); }));
    } else {
      acc = reduce_range<R, A>(r, begin + lane, end, G, [&](int64_t e) {
        return convert<A>(*reinterpret_cast<const T*>(base + c.red_offset(e)));
      });
    }
  }
  acc = group_reduce(acc, G, r);
  if (lane == 0 && o < numel_out) {
    if (partial) partial[static_cast<int64_t>(blockIdx.y) * numel_out + o] = acc;
    else emit(o, acc);
  }
}

// Combines the slice partials of each output: one warp per output, lanes take slices 32 apart,
// then a shuffle tree (a fixed order, and a shallow one, for accuracy).
template <typename R, typename Emit>
__global__ void __launch_bounds__(kBlock)
    combine_kernel(const typename R::Acc* partial, int64_t numel_out, int slices, R r, Emit emit) {
  const int lane = threadIdx.x % 32;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (kBlock / 32);
  for (int64_t o = static_cast<int64_t>(blockIdx.x) * (kBlock / 32) + threadIdx.x / 32; o < numel_out; o += warps) {
    typename R::Acc acc = r.identity();
    for (int s = lane; s < slices; s += 32) acc = r.combine(acc, partial[s * numel_out + o]);
    acc = group_reduce(acc, 32, r);
    if (lane == 0) emit(o, acc);
  }
}

// Writes finish(acc) as Out to a contiguous output.
template <typename Out, typename Finish>
struct EmitValue {
  Out* out;
  Finish finish;
  template <typename Acc>
  __device__ void operator()(int64_t o, const Acc& a) const {
    out[o] = convert<Out>(finish(a));
  }
};

struct Identity {
  template <typename A>
  __device__ A operator()(const A& a) const { return a; }
};
template <typename A>
struct DivideBy {
  A n;
  __device__ A operator()(A a) const { return a / n; }
};
template <typename A>
struct Variance {
  reduce::Welford<A> w;
  bool take_sqrt;
  __device__ A operator()(const typename reduce::Welford<A>::Acc& a) const {
    A v = w.variance(a);
    return take_sqrt ? sqrt(v) : v;
  }
};
template <typename A>
struct NormFinish {
  reduce::Norm<A> n;
  __device__ A operator()(A a) const { return n.finish(a); }
};

template <typename T, typename Out>
struct EmitArg {
  T* values;  // may be null
  int64_t* indices;
  template <typename Acc>
  __device__ void operator()(int64_t o, const Acc& a) const {
    indices[o] = a.index < 0 ? 0 : a.index;
    if (values) values[o] = convert<T>(a.value);
  }
};

// Runs reducer r over `dims` of x, emitting each output element.
template <typename T, typename R, typename Emit>
void run_reduce(const Tensor& input, const DimList& dims, const R& r, const Emit& emit) {
  Tensor x = input;
  ReduceGeometry g = make_reduce_geometry(x, dims);
  if (static_cast<int>(g.kept_sizes.size()) > kMaxDims || static_cast<int>(g.red_sizes.size()) > kMaxDims) {
    // Many interleaved dims: move the reduced ones last and reduce a contiguous 2-D view.
    std::vector<int64_t> order;
    for (int64_t d = 0; d < x.dim(); ++d)
      if (!std::binary_search(dims.begin(), dims.end(), d)) order.push_back(d);
    order.insert(order.end(), dims.begin(), dims.end());
    x = permute(x, order).contiguous().reshape({g.numel_out, g.numel_red});
    g = make_reduce_geometry(x, {1});
  }
  if (g.numel_out == 0) return;
  ReduceCalc c{};
  c.kept_ndim = static_cast<int>(g.kept_sizes.size());
  c.red_ndim = static_cast<int>(g.red_sizes.size());
  for (int d = 0; d < c.kept_ndim; ++d) {
    c.kept_sizes[d] = g.kept_sizes[c.kept_ndim - 1 - d];
    c.kept_strides[d] = g.kept_strides[c.kept_ndim - 1 - d];
  }
  for (int d = 0; d < c.red_ndim; ++d) {
    c.red_sizes[d] = g.red_sizes[c.red_ndim - 1 - d];
    c.red_strides[d] = g.red_strides[c.red_ndim - 1 - d];
  }
  const int64_t L = g.numel_red;
  const bool contiguous_reduction = c.red_ndim == 1 && c.red_strides[0] == static_cast<int64_t>(sizeof(T));
  const int G = contiguous_reduction ? (L >= 1024 ? kBlock : 32) : 1;
  const int64_t blocks_x = (g.numel_out + kBlock / G - 1) / (kBlock / G);
  const int device = x.device().index;
  const int64_t sms = cuda_detail::device_prop(device).multiProcessorCount;
  // Too few outputs to fill the GPU (8 blocks per multiprocessor): split the reduced range into
  // slices of at least 16 elements per thread. A column reduction (one thread per output, as a
  // bias gradient's sum over [4096, 384]) takes slices of 32: with 256 it ran 32 blocks whose
  // threads each walked 256 dependent loads.
  int64_t slices = 1;
  const int64_t min_slice = G == 1 ? 32 : std::max<int64_t>(16 * G, 256);
  if (blocks_x < 8 * sms && L >= 2 * min_slice)
    slices = std::min<int64_t>({(8 * sms + blocks_x - 1) / blocks_x, L / min_slice, 65535});
  int64_t slice_len = L;
  if (slices > 1) {
    slice_len = (L + slices - 1) / slices;
    slice_len = (slice_len + 15) / 16 * 16;  // slices start 16-element aligned for vector loads
    slices = (L + slice_len - 1) / slice_len;
  }
  EMBER_CHECK(blocks_x <= INT32_MAX, Unsupported, "[cuda] reduction with ", g.numel_out, " outputs");

  cuda::DeviceGuard guard(device);
  cudaStream_t s = cuda_detail::stream(device);
  using Acc = typename R::Acc;
  Tensor workspace;
  Acc* partial = nullptr;
  if (slices > 1) {
    workspace = empty_tensor({static_cast<int64_t>(slices * g.numel_out * sizeof(Acc))}, kUInt8, x.device(), "reduce");
    partial = static_cast<Acc*>(workspace.data());
  }
  dim3 grid(static_cast<unsigned>(blocks_x), static_cast<unsigned>(slices));
  if (contiguous_reduction)
    reduce_kernel<T, true><<<grid, kBlock, 0, s>>>(static_cast<const char*>(x.data()), c, g.numel_out, L, G,
                                                    slice_len, r, emit, partial);
  else
    reduce_kernel<T, false><<<grid, kBlock, 0, s>>>(static_cast<const char*>(x.data()), c, g.numel_out, L, G,
                                                     slice_len, r, emit, partial);
  EMBER_CUDA_CHECK_LAUNCH();
  if (slices > 1) {
    combine_kernel<<<cuda_ops::grid_for(g.numel_out * 32, device), kBlock, 0, s>>>(partial, g.numel_out,
                                                                               static_cast<int>(slices), r, emit);
    EMBER_CUDA_CHECK_LAUNCH();
  }
}

int64_t reduced_numel(const Tensor& x, const DimList& dims) {
  int64_t n = 1;
  for (int64_t d : dims) n *= x.sizes()[d];
  return n;
}

}  // namespace

void ReduceOp::forward_cuda(const TensorList& inputs, const TensorList& outputs) {
  const Tensor& x = inputs[0];
  const Tensor& y = outputs[0];
  switch (kind) {
    case ReduceKind::Sum:
      cuda_ops::dispatch<kNumericSet>(x.dtype(), name(), [&]<typename T>() {
        using A = cuda_ops::acc_t<T>;
        run_reduce<T>(x, dims, reduce::Sum<A>{}, EmitValue<T, Identity>{y.data_ptr<T>(), {}});
      });
      break;
    case ReduceKind::Prod:
      cuda_ops::dispatch<kNumericSet>(x.dtype(), name(), [&]<typename T>() {
        using A = cuda_ops::acc_t<T>;
        run_reduce<T>(x, dims, reduce::Prod<A>{}, EmitValue<T, Identity>{y.data_ptr<T>(), {}});
      });
      break;
    case ReduceKind::Mean:
      cuda_ops::dispatch<kFloatingSet>(x.dtype(), name(), [&]<typename T>() {
        using A = cuda_ops::acc_t<T>;
        A n = static_cast<A>(reduced_numel(x, dims));
        run_reduce<T>(x, dims, reduce::Sum<A>{}, EmitValue<T, DivideBy<A>>{y.data_ptr<T>(), {n}});
      });
      break;
    case ReduceKind::Amax:
    case ReduceKind::Amin:
      cuda_ops::dispatch<kAllSet>(x.dtype(), name(), [&]<typename T>() {
        using A = cuda_ops::acc_t<T>;
        EmitValue<T, Identity> emit{y.data_ptr<T>(), {}};
        if (kind == ReduceKind::Amax) run_reduce<T>(x, dims, reduce::Extreme<A, true>{}, emit);
        else run_reduce<T>(x, dims, reduce::Extreme<A, false>{}, emit);
      });
      break;
    case ReduceKind::Any:
    case ReduceKind::All:
      cuda_ops::dispatch<kAllSet>(x.dtype(), name(), [&]<typename T>() {
        auto go = [&]<typename R>(R r) {
          if (y.dtype() == kBool) run_reduce<T>(x, dims, r, EmitValue<bool, Identity>{y.data_ptr<bool>(), {}});
          else run_reduce<T>(x, dims, r, EmitValue<uint8_t, Identity>{y.data_ptr<uint8_t>(), {}});
        };
        if (kind == ReduceKind::Any) go(reduce::Truth<false>{});
        else go(reduce::Truth<true>{});
      });
      break;
    case ReduceKind::Var:
    case ReduceKind::Std:
      cuda_ops::dispatch<kFloatingSet>(x.dtype(), name(), [&]<typename T>() {
        using A = cuda_ops::acc_t<T>;
        reduce::Welford<A> w{.correction = correction};
        run_reduce<T>(x, dims, w, EmitValue<T, Variance<A>>{y.data_ptr<T>(), {w, kind == ReduceKind::Std}});
      });
      break;
    case ReduceKind::Norm:
      cuda_ops::dispatch<kFloatingSet>(x.dtype(), name(), [&]<typename T>() {
        using A = cuda_ops::acc_t<T>;
        reduce::Norm<A> nr{.p = p};
        run_reduce<T>(x, dims, nr, EmitValue<T, NormFinish<A>>{y.data_ptr<T>(), {nr}});
      });
      break;
  }
}

void ArgReduceOp::forward_cuda(const TensorList& inputs, const TensorList& outputs) {
  const Tensor& x = inputs[0];
  cuda_ops::dispatch<kNumericSet | kBoolSet>(x.dtype(), name(), [&]<typename T>() {
    using A = cuda_ops::acc_t<T>;
    EmitArg<T, int64_t> emit{with_values ? outputs[0].data_ptr<T>() : nullptr,
                             outputs[with_values ? 1 : 0].data_ptr<int64_t>()};
    if (is_max) run_reduce<T>(x, dims, reduce::ArgExtreme<A, true>{}, emit);
    else run_reduce<T>(x, dims, reduce::ArgExtreme<A, false>{}, emit);
  });
}

}  // namespace ember
