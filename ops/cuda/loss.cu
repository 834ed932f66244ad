// CUDA kernels of the fused cross-entropy: one warp per row. Forward keeps a running maximum
// and rescaled sum of exponentials per lane (an online softmax), so each logit is read once;
// backward reads the row again and writes its gradient. A target out of range cannot throw
// from a kernel: the row's loss becomes NaN and the bad value is written to a small mapped
// host buffer, which the next call on the device reads without synchronising and reports.
#include <cmath>
#include <limits>
#include <mutex>

#include "ops/cuda/loops.cuh"
#include "ops/cuda/online_softmax.cuh"
#include "ops/cuda/row_reduce.cuh"
#include "ops/loss.h"
#include "runtime/cuda/check.h"

namespace ember {

namespace {

constexpr int kRowsPerBlock = cuda_ops::kBlock / 32;
constexpr int kMaxDevices = 64;

// Per device: {a bad target was seen, its value, the class count}. Written by kernels through
// the mapped (UVA) pointer, read by the host with no synchronisation.
struct BadTargetSlots {
  volatile int64_t* host = nullptr;
  int64_t* device = nullptr;
};

BadTargetSlots bad_target_slots() {
  static BadTargetSlots slots;
  static std::once_flag once;
  std::call_once(once, [] {
    void* p = nullptr;
    EMBER_CUDA_CHECK(cudaHostAlloc(&p, sizeof(int64_t) * 3 * kMaxDevices, cudaHostAllocMapped | cudaHostAllocPortable));
    std::memset(p, 0, sizeof(int64_t) * 3 * kMaxDevices);
    void* d = nullptr;
    EMBER_CUDA_CHECK(cudaHostGetDevicePointer(&d, p, 0));
    slots.host = static_cast<volatile int64_t*>(p);
    slots.device = static_cast<int64_t*>(d);
  });
  return slots;
}

// Raises the error an earlier kernel on `device` recorded, once.
void raise_pending_target_error(int device) {
  volatile int64_t* slot = bad_target_slots().host + 3 * device;
  if (slot[0] == 0) return;
  const int64_t target = slot[1], classes = slot[2];
  slot[0] = 0;
  throw_error(ErrorCode::InvalidArgument,
              str_cat("[cross_entropy] an earlier call on cuda:", device, " had a target outside [0, ", classes,
                      "): got ", target, " (that call's loss was NaN)"));
}

struct RowArgs {
  int64_t rows, classes, ignore_index;
  double eps;  // converted to the accumulation type in the kernels
  int64_t* bad;  // this device's slot
  int64_t grad_stride = 1;  // backward: elements between rows' gradients (0 when expanded)
};

__device__ bool check_target(int64_t t, const RowArgs& a) {
  if (t == a.ignore_index) return false;
  if (t < 0 || t >= a.classes) {
    a.bad[1] = t;
    a.bad[2] = a.classes;
    __threadfence_system();
    a.bad[0] = 1;
    return false;
  }
  return true;
}

template <typename T, typename L>
__global__ void __launch_bounds__(cuda_ops::kBlock)
    forward_kernel(const T* __restrict__ x, const int64_t* __restrict__ target, const T* __restrict__ weight,
                   T* loss, T* row_weight, L* lse_out, RowArgs a) {
  using A = cuda_ops::acc_t<T>;
  const int lane = threadIdx.x & 31;
  const int64_t i = int64_t{blockIdx.x} * kRowsPerBlock + (threadIdx.x >> 5);
  if (i >= a.rows) return;
  const T* row = x + i * a.classes;
  cuda_ops::OnlineSoftmax<A> s;
  A weighted_x = 0, weight_sum = 0;
  for (int64_t c = lane; c < a.classes; c += 32) {
    const A v = cuda_ops::convert<A>(row[c]);
    s.add(v);
    const A wc = weight ? cuda_ops::convert<A>(weight[c]) : A(1);
    weighted_x += wc * v;
    weight_sum += wc;
  }
  s = cuda_ops::warp_merge(s);
  weighted_x = cuda_ops::warp_sum(weighted_x);
  weight_sum = cuda_ops::warp_sum(weight_sum);
  if (lane != 0) return;
  const A lse = s.max + log(s.sum);
  lse_out[i] = static_cast<L>(lse);
  const int64_t t = target[i];
  const bool in_range = t >= 0 && t < a.classes;
  if (!check_target(t, a)) {
    const A v = t == a.ignore_index ? A(0) : A(NAN);
    loss[i] = cuda_ops::convert<T>(v);
    row_weight[i] = cuda_ops::convert<T>(in_range || t == a.ignore_index ? A(0) : A(NAN));
    return;
  }
  const A w_y = weight ? cuda_ops::convert<A>(weight[t]) : A(1);
  const A nll = w_y * (lse - cuda_ops::convert<A>(row[t]));
  const A smooth = weight_sum * lse - weighted_x;
  const A eps = static_cast<A>(a.eps);
  loss[i] = cuda_ops::convert<T>((A(1) - eps) * nll + eps / A(a.classes) * smooth);
  row_weight[i] = cuda_ops::convert<T>(w_y);
}

template <typename T, typename L>
__global__ void __launch_bounds__(cuda_ops::kBlock)
    backward_kernel(const T* __restrict__ x, const int64_t* __restrict__ target, const T* __restrict__ weight,
                    const L* __restrict__ lse, const T* __restrict__ grad, const L* __restrict__ grad_lse,
                    T* __restrict__ dx, RowArgs a) {
  using A = cuda_ops::acc_t<T>;
  const int lane = threadIdx.x & 31;
  const int64_t i = int64_t{blockIdx.x} * kRowsPerBlock + (threadIdx.x >> 5);
  if (i >= a.rows) return;
  const T* row = x + i * a.classes;
  T* out = dx + i * a.classes;
  const int64_t t = target[i];
  const A l = static_cast<A>(lse[i]);
  const A g_lse = static_cast<A>(grad_lse[i]);
  if (t < 0 || t >= a.classes) {
    const bool ignored = t == a.ignore_index;
    for (int64_t c = lane; c < a.classes; c += 32)
      out[c] = cuda_ops::convert<T>(ignored ? g_lse * exp(cuda_ops::convert<A>(row[c]) - l) : A(NAN));
    return;
  }
  if (t == a.ignore_index) {
    for (int64_t c = lane; c < a.classes; c += 32) out[c] = cuda_ops::convert<T>(g_lse * exp(cuda_ops::convert<A>(row[c]) - l));
    return;
  }
  A weight_sum = A(a.classes);
  if (weight) {
    A part = 0;
    for (int64_t c = lane; c < a.classes; c += 32) part += cuda_ops::convert<A>(weight[c]);
    weight_sum = cuda_ops::warp_sum(part);
  }
  const A g = cuda_ops::convert<A>(grad[i * a.grad_stride]);
  const A eps = static_cast<A>(a.eps);
  const A w_y = weight ? cuda_ops::convert<A>(weight[t]) : A(1);
  const A nll_scale = g * (A(1) - eps) * w_y;
  const A smooth_scale = g * eps / A(a.classes);
  for (int64_t c = lane; c < a.classes; c += 32) {
    const A p = exp(cuda_ops::convert<A>(row[c]) - l);
    const A wc = weight ? cuda_ops::convert<A>(weight[c]) : A(1);
    out[c] = cuda_ops::convert<T>(nll_scale * (p - (c == t ? A(1) : A(0))) + smooth_scale * (weight_sum * p - wc) +
                                  g_lse * p);
  }
}

template <typename T>
const T* optional_data(const Tensor& t) {
  return t.defined() ? t.data_ptr<T>() : nullptr;
}

RowArgs row_args(const Tensor& x, int64_t ignore_index, double eps) {
  const int device = x.device().index;
  EMBER_CHECK(device < kMaxDevices, Unsupported, "[cross_entropy] CUDA device ", device, " is past the ",
              kMaxDevices, " supported");
  return {x.sizes()[0], x.sizes()[1], ignore_index, eps, bad_target_slots().device + 3 * device};
}

unsigned blocks_for(int64_t rows) { return static_cast<unsigned>((rows + kRowsPerBlock - 1) / kRowsPerBlock); }

}  // namespace

void CrossEntropyOp::forward_cuda(const TensorList& inputs, const TensorList& outputs) {
  const Tensor& x = inputs[0];
  const int device = x.device().index;
  raise_pending_target_error(device);
  const RowArgs a = row_args(x, ignore_index, label_smoothing);
  if (a.rows == 0) return;
  cudaStream_t stream = cuda_detail::stream(device);
  cuda_ops::dispatch<kFloatingSet>(x.dtype(), name(), [&]<typename T>() {
    using L = std::conditional_t<cuda_ops::is_half_v<T>, float, T>;
    forward_kernel<T, L><<<blocks_for(a.rows), cuda_ops::kBlock, 0, stream>>>(
        x.data_ptr<T>(), inputs[1].data_ptr<int64_t>(), optional_data<T>(inputs[2]), outputs[0].data_ptr<T>(),
        outputs[1].data_ptr<T>(), outputs[2].data_ptr<L>(), a);
    EMBER_CUDA_CHECK_LAUNCH();
  });
}

void CrossEntropyBackwardOp::forward_cuda(const TensorList& inputs, const TensorList& outputs) {
  const Tensor& x = inputs[0];
  RowArgs a = row_args(x, ignore_index, label_smoothing);
  a.grad_stride = inputs[4].strides()[0];
  if (a.rows == 0) return;
  cudaStream_t stream = cuda_detail::stream(x.device().index);
  cuda_ops::dispatch<kFloatingSet>(x.dtype(), name(), [&]<typename T>() {
    using L = std::conditional_t<cuda_ops::is_half_v<T>, float, T>;
    backward_kernel<T, L><<<blocks_for(a.rows), cuda_ops::kBlock, 0, stream>>>(
        x.data_ptr<T>(), inputs[1].data_ptr<int64_t>(), optional_data<T>(inputs[2]), inputs[3].data_ptr<L>(),
        inputs[4].data_ptr<T>(), inputs[5].data_ptr<L>(), outputs[0].data_ptr<T>(), a);
    EMBER_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace ember
