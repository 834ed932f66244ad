// CUDA kernels of the factories and of fill / copy (casts between any two dtypes).
#include <cstring>

#include "ops/copy.h"
#include "ops/creation.h"
#include "ops/cuda/loops.cuh"

namespace ember {

namespace {

using cuda_ops::convert;

template <typename T>
T scalar_as(const Scalar& s) {
  switch (s.kind()) {
    case Scalar::Kind::Bool: return convert<T>(s.to<bool>());
    case Scalar::Kind::Int: return convert<T>(s.to<int64_t>());
    case Scalar::Kind::Float: return convert<T>(s.to<double>());
  }
  return T();
}

template <typename T>
struct FillFn {
  T v;
  __device__ T operator()() const { return v; }
};

template <typename Out, typename In>
struct CastFn {
  __device__ Out operator()(In x) const { return convert<Out>(x); }
};

template <typename T>
__global__ void arange_kernel(T* out, int64_t n, double start_f, double step_f, int64_t start_i, int64_t step_i) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    if constexpr (cuda_ops::is_float_v<T>) out[i] = convert<T>(start_f + static_cast<double>(i) * step_f);
    else out[i] = convert<T>(start_i + i * step_i);
  }
}

template <typename T>
__global__ void linspace_kernel(T* out, int64_t n, double start, double end) {
  const double step = n > 1 ? (end - start) / static_cast<double>(n - 1) : 0;
  const int64_t half = n / 2;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    double v = n == 1 ? start : i < half ? start + step * static_cast<double>(i) : end - step * static_cast<double>(n - i - 1);
    out[i] = convert<T>(v);
  }
}

template <typename T>
__global__ void eye_kernel(T* out, int64_t n, int64_t m) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n * m;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[i] = convert<T>(i / m == i % m ? 1 : 0);
}

}  // namespace

void FillOp::forward_cuda(const TensorList&, const TensorList& outputs) {
  cuda_ops::dispatch<kAllSet>(outputs[0].dtype(), name(), [&]<typename T>() {
    cuda_ops::launch_elementwise<T>(outputs[0], {}, FillFn<T>{scalar_as<T>(value)});
  });
}

void CopyOp::forward_cuda(const TensorList& inputs, const TensorList& outputs) {
  cuda_ops::dispatch<kAllSet>(outputs[0].dtype(), name(), [&]<typename Out>() {
    cuda_ops::dispatch<kAllSet>(inputs[0].dtype(), name(), [&]<typename In>() {
      cuda_ops::launch_elementwise<Out, In>(outputs[0], {inputs[0]}, CastFn<Out, In>{});
    });
  });
}

void ArangeOp::forward_cuda(const TensorList&, const TensorList& outputs) {
  const Tensor& out = outputs[0];
  const int device = out.device().index;
  cuda::DeviceGuard guard(device);
  cuda_ops::dispatch<kNumericSet>(out.dtype(), name(), [&]<typename T>() {
    arange_kernel<T><<<cuda_ops::grid_for(out.numel(), device), cuda_ops::kBlock, 0, cuda_detail::stream(device)>>>(
        out.data_ptr<T>(), out.numel(), start.to_double(), step.to_double(), start.to<int64_t>(), step.to<int64_t>());
  });
  EMBER_CUDA_CHECK_LAUNCH();
}

void LinspaceOp::forward_cuda(const TensorList&, const TensorList& outputs) {
  const Tensor& out = outputs[0];
  const int device = out.device().index;
  if (out.numel() == 0) return;
  cuda::DeviceGuard guard(device);
  cuda_ops::dispatch<kNumericSet>(out.dtype(), name(), [&]<typename T>() {
    linspace_kernel<T><<<cuda_ops::grid_for(out.numel(), device), cuda_ops::kBlock, 0, cuda_detail::stream(device)>>>(
        out.data_ptr<T>(), out.numel(), start, end);
  });
  EMBER_CUDA_CHECK_LAUNCH();
}

void EyeOp::forward_cuda(const TensorList&, const TensorList& outputs) {
  const Tensor& out = outputs[0];
  const int device = out.device().index;
  if (out.numel() == 0) return;
  cuda::DeviceGuard guard(device);
  cuda_ops::dispatch<kAllSet>(out.dtype(), name(), [&]<typename T>() {
    eye_kernel<T><<<cuda_ops::grid_for(out.numel(), device), cuda_ops::kBlock, 0, cuda_detail::stream(device)>>>(
        out.data_ptr<T>(), out.sizes()[0], out.sizes()[1]);
  });
  EMBER_CUDA_CHECK_LAUNCH();
}

}  // namespace ember
