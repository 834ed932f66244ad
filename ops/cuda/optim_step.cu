// Fused multi-tensor optimizer kernels (nn/fused_step.h). The tensors of one launch are
// treated as one concatenated range: each thread finds its tensor by a search over the
// tensors' start offsets, so one launch covers any mix of sizes.
#include <cstring>

#include "nn/fused_step.h"
#include "ops/cuda/loops.cuh"

namespace ember::nn::fused {

namespace {

constexpr int kMaxTensors = 48;  // keeps the kernel arguments under CUDA's 4 KiB

struct TensorTable {
  int count;
  int64_t start[kMaxTensors + 1];  // start[i]: first global index of tensor i
  __device__ __forceinline__ int find(int64_t i) const {
    int lo = 0, hi = count - 1;
    while (lo < hi) {
      const int mid = (lo + hi + 1) / 2;
      if (start[mid] <= i) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
};

struct AdamList {
  TensorTable table;
  float* p[kMaxTensors];
  const float* g[kMaxTensors];
  float* m[kMaxTensors];
  float* v[kMaxTensors];
  float* vmax[kMaxTensors];
  float step_size[kMaxTensors];   // lr / (1 - beta1^step)
  float bias2_sqrt[kMaxTensors];  // sqrt(1 - beta2^step)
};

struct AdamScalars {
  float lr, beta1, beta2, eps, weight_decay;
  bool decoupled, amsgrad;
};

// PyTorch's single-tensor Adam, element by element, in the same order of operations.
__device__ __forceinline__ void adam_update(const AdamList& L, int64_t total, const AdamScalars& s) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int t = L.table.find(i);
    const int64_t j = i - L.table.start[t];
    float p = L.p[t][j], g = L.g[t][j];
    if (s.weight_decay != 0) {
      if (s.decoupled) p *= 1 - s.lr * s.weight_decay;
      else g += s.weight_decay * p;
    }
    float m = L.m[t][j];
    m += (g - m) * (1 - s.beta1);
    const float v = s.beta2 * L.v[t][j] + (1 - s.beta2) * g * g;
    L.m[t][j] = m;
    L.v[t][j] = v;
    float second = v;
    if (s.amsgrad) {
      second = fmaxf(L.vmax[t][j], v);
      L.vmax[t][j] = second;
    }
    const float denom = sqrtf(second) / L.bias2_sqrt[t] + s.eps;
    L.p[t][j] = p - L.step_size[t] * (m / denom);
  }
}

struct AdamArgs {
  AdamList L;
  AdamScalars s;
};
__global__ void adam_kernel(AdamArgs a, int64_t total) { adam_update(a.L, total, a.s); }
// The same, its arguments read from device memory (a captured step: GraphedArgs).
__global__ void adam_kernel_graphed(const AdamArgs* a, int64_t total) { adam_update(a->L, total, a->s); }

struct SGDList {
  TensorTable table;
  float* p[kMaxTensors];
  const float* g[kMaxTensors];
  float* buf[kMaxTensors];
  int first[kMaxTensors];
};

struct SGDScalars {
  float lr, momentum, dampening, weight_decay;
  bool nesterov;
};

__device__ __forceinline__ void sgd_update(const SGDList& L, int64_t total, const SGDScalars& s) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int t = L.table.find(i);
    const int64_t j = i - L.table.start[t];
    const float p = L.p[t][j];
    float d = L.g[t][j];
    if (s.weight_decay != 0) d += s.weight_decay * p;
    if (s.momentum != 0) {
      const float b = L.first[t] ? d : s.momentum * L.buf[t][j] + (1 - s.dampening) * d;
      L.buf[t][j] = b;
      d = s.nesterov ? d + s.momentum * b : b;
    }
    L.p[t][j] = p - s.lr * d;
  }
}

struct SGDArgs {
  SGDList L;
  SGDScalars s;
};
__global__ void sgd_kernel(SGDArgs a, int64_t total) { sgd_update(a.L, total, a.s); }
__global__ void sgd_kernel_graphed(const SGDArgs* a, int64_t total) { sgd_update(a->L, total, a->s); }

struct RMSpropList {
  TensorTable table;
  float* p[kMaxTensors];
  const float* g[kMaxTensors];
  float* sq[kMaxTensors];
  float* ga[kMaxTensors];
  float* buf[kMaxTensors];
};

struct RMSpropScalars {
  float lr, alpha, eps, weight_decay, momentum;
  bool centered;
};

__device__ __forceinline__ void rmsprop_update(const RMSpropList& L, int64_t total, const RMSpropScalars& s) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int t = L.table.find(i);
    const int64_t j = i - L.table.start[t];
    const float p = L.p[t][j];
    float g = L.g[t][j];
    if (s.weight_decay != 0) g += s.weight_decay * p;
    const float sq = s.alpha * L.sq[t][j] + (1 - s.alpha) * g * g;
    L.sq[t][j] = sq;
    float avg;
    if (s.centered) {
      float ga = L.ga[t][j];
      ga += (g - ga) * (1 - s.alpha);
      L.ga[t][j] = ga;
      avg = sqrtf(sq - ga * ga) + s.eps;
    } else {
      avg = sqrtf(sq) + s.eps;
    }
    if (s.momentum > 0) {
      const float b = s.momentum * L.buf[t][j] + g / avg;
      L.buf[t][j] = b;
      L.p[t][j] = p - s.lr * b;
    } else {
      L.p[t][j] = p - s.lr * (g / avg);
    }
  }
}

struct RMSpropArgs {
  RMSpropList L;
  RMSpropScalars s;
};
__global__ void rmsprop_kernel(RMSpropArgs a, int64_t total) { rmsprop_update(a.L, total, a.s); }
__global__ void rmsprop_kernel_graphed(const RMSpropArgs* a, int64_t total) { rmsprop_update(a->L, total, a->s); }

// Launches one fused update: `kernel` with its arguments by value; or, while a GraphedArgs scope
// is current, through its slots: captured as `graphed` reading them from the slot's device
// memory, or (refreshing) only the host slot rewritten, nothing launched.
template <typename Args>
void launch_update(const Args& a, int64_t total, int device, cudaStream_t stream, void (*kernel)(Args, int64_t),
                   void (*graphed)(const Args*, int64_t)) {
  static_assert(sizeof(Args) <= GraphedArgs::kSlotBytes, "the kernel's arguments must fit CUDA's 4 KiB");
  GraphedArgs* slots = GraphedArgs::current();
  if (!slots) {
    kernel<<<cuda_ops::grid_for(total, device), cuda_ops::kBlock, 0, stream>>>(a, total);
    EMBER_CUDA_CHECK_LAUNCH();
    return;
  }
  std::memcpy(slots->next(sizeof(Args), total), &a, sizeof(Args));
  if (slots->mode() == GraphedArgs::Mode::Refresh) return;
  graphed<<<cuda_ops::grid_for(total, device), cuda_ops::kBlock, 0, stream>>>(
      static_cast<const Args*>(slots->device_slot()), total);
  EMBER_CUDA_CHECK_LAUNCH();
}

// The positions of the parameters that have a gradient this step (the others are skipped).
std::vector<size_t> with_gradient(const TensorList& grads) {
  std::vector<size_t> index;
  for (size_t i = 0; i < grads.size(); ++i)
    if (grads[i].defined() && grads[i].numel() > 0) index.push_back(i);
  return index;
}

// Fills lists of at most kMaxTensors tensors, fill(list, k, i) putting parameter i in slot k,
// and runs launch(list, total elements) for each.
template <typename List, typename Fill, typename Launch>
void for_each_group(const TensorList& params, const std::vector<size_t>& index, const Fill& fill,
                    const Launch& launch) {
  for (size_t first = 0; first < index.size(); first += kMaxTensors) {
    List list{};
    int64_t total = 0;
    int k = 0;
    for (size_t n = first; n < index.size() && k < kMaxTensors; ++n, ++k) {
      list.table.start[k] = total;
      fill(list, k, index[n]);
      total += params[index[n]].numel();
    }
    list.table.count = k;
    list.table.start[k] = total;
    launch(list, total);
  }
  for (size_t i : index) params[i].bump_version();
}


}  // namespace

bool applies(const std::vector<Tensor>& params) {
  std::optional<Device> device;
  for (const Tensor& p : params) {
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    if (!p.is_cuda() || p.dtype() != kFloat32 || !p.is_contiguous() || !g.is_contiguous() || g.dtype() != kFloat32 ||
        g.device() != p.device())
      return false;
    if (device && *device != p.device()) return false;
    device = p.device();
  }
  return device.has_value();
}

void adam_step(const TensorList& params, const TensorList& grads, const TensorList& exp_avg,
               const TensorList& exp_avg_sq, const TensorList& max_exp_avg_sq, const std::vector<int64_t>& steps,
               const AdamConfig& c) {
  const std::vector<size_t> index = with_gradient(grads);
  if (index.empty()) return;
  const int device = params[index[0]].device().index;  // applies() checked they share it
  cuda::DeviceGuard guard(device);
  cudaStream_t stream = cuda_detail::stream(device);
  const AdamScalars s{float(c.lr), float(c.beta1), float(c.beta2), float(c.eps), float(c.weight_decay),
                      c.decoupled_weight_decay, c.amsgrad};
  for_each_group<AdamList>(
      params, index,
      [&](AdamList& L, int k, size_t i) {
        L.p[k] = params[i].data_ptr<float>();
        L.g[k] = grads[i].data_ptr<float>();
        L.m[k] = exp_avg[i].data_ptr<float>();
        L.v[k] = exp_avg_sq[i].data_ptr<float>();
        L.vmax[k] = c.amsgrad ? max_exp_avg_sq[i].data_ptr<float>() : nullptr;
        const double step = static_cast<double>(steps[i]);
        L.step_size[k] = static_cast<float>(c.lr / (1 - std::pow(c.beta1, step)));
        L.bias2_sqrt[k] = static_cast<float>(std::sqrt(1 - std::pow(c.beta2, step)));
      },
      [&](const AdamList& L, int64_t total) {
        launch_update(AdamArgs{L, s}, total, device, stream, adam_kernel, adam_kernel_graphed);
      });
}

void rmsprop_step(const TensorList& params, const TensorList& grads, const TensorList& square_avg,
                  const TensorList& grad_avg, const TensorList& buffers, const RMSpropConfig& c) {
  const std::vector<size_t> index = with_gradient(grads);
  if (index.empty()) return;
  const int device = params[index[0]].device().index;  // applies() checked they share it
  cuda::DeviceGuard guard(device);
  cudaStream_t stream = cuda_detail::stream(device);
  const RMSpropScalars s{float(c.lr), float(c.alpha), float(c.eps), float(c.weight_decay), float(c.momentum),
                         c.centered};
  for_each_group<RMSpropList>(
      params, index,
      [&](RMSpropList& L, int k, size_t i) {
        L.p[k] = params[i].data_ptr<float>();
        L.g[k] = grads[i].data_ptr<float>();
        L.sq[k] = square_avg[i].data_ptr<float>();
        L.ga[k] = c.centered ? grad_avg[i].data_ptr<float>() : nullptr;
        L.buf[k] = c.momentum > 0 ? buffers[i].data_ptr<float>() : nullptr;
      },
      [&](const RMSpropList& L, int64_t total) {
        launch_update(RMSpropArgs{L, s}, total, device, stream, rmsprop_kernel, rmsprop_kernel_graphed);
      });
}

void sgd_step(const TensorList& params, const TensorList& grads, const TensorList& buffers,
              const std::vector<bool>& first, const SGDConfig& c) {
  const std::vector<size_t> index = with_gradient(grads);
  if (index.empty()) return;
  const int device = params[index[0]].device().index;  // applies() checked they share it
  cuda::DeviceGuard guard(device);
  cudaStream_t stream = cuda_detail::stream(device);
  const SGDScalars s{float(c.lr), float(c.momentum), float(c.dampening), float(c.weight_decay), c.nesterov};
  for_each_group<SGDList>(
      params, index,
      [&](SGDList& L, int k, size_t i) {
        L.p[k] = params[i].data_ptr<float>();
        L.g[k] = grads[i].data_ptr<float>();
        L.buf[k] = c.momentum != 0 ? buffers[i].data_ptr<float>() : nullptr;
        L.first[k] = first[i] ? 1 : 0;
      },
      [&](const SGDList& L, int64_t total) {
        launch_update(SGDArgs{L, s}, total, device, stream, sgd_kernel, sgd_kernel_graphed);
      });
}

}  // namespace ember::nn::fused
