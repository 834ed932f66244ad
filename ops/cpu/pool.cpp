// max_pool2d's forward on the CPU: one pass over each output window, as the CUDA kernel
// (ops/cuda/pool.cu) does it, planes in parallel. The public-op form it replaces (a max over
// materialised windows, then index arithmetic in int64 tensors) was 15% of resnet18's CPU
// forward for its one pooling layer; it stays as the tests' reference (max_pool2d_reference).
#include <cmath>

#include "ops/pool.h"
#include "runtime/dispatch.h"
#include "runtime/parallel.h"

namespace ember {

namespace {

// Planes per parallel chunk: enough output cells that a thread is worth waking.
int64_t planes_per_chunk(int64_t cells_per_plane) { return std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(1, cells_per_plane)); }

}  // namespace

void MaxPool2dOp::forward_cpu(const TensorList& inputs, const TensorList& outputs) {
  const Tensor x = inputs[0].contiguous();
  const Tensor& values = outputs[0];
  const Tensor& indices = outputs[1];
  const PoolParams& p = params;
  const int64_t h = x.sizes()[2], w = x.sizes()[3], oh = values.sizes()[2], ow = values.sizes()[3];
  const int64_t planes = x.sizes()[0] * x.sizes()[1];
  if (values.numel() == 0) return;
  dispatch<kFloatingSet>(x.dtype(), "max_pool2d", [&]<typename T>() {
    using A = opmath_t<T>;
    const T* in_all = x.data_ptr<T>();
    T* y_all = values.data_ptr<T>();
    int64_t* idx_all = indices.data_ptr<int64_t>();
    parallel_for(0, planes, planes_per_chunk(oh * ow), [&](int64_t p0, int64_t p1) {
      for (int64_t plane = p0; plane < p1; ++plane) {
        const T* in = in_all + plane * h * w;
        T* y = y_all + plane * oh * ow;
        int64_t* idx = idx_all + plane * oh * ow;
        for (int64_t r = 0; r < oh; ++r) {
          // Windows start inside the input (ceil_mode drops the others): skip padded rows first.
          int64_t h0 = r * p.stride[0] - p.padding[0];
          while (h0 < 0) h0 += p.dilation[0];
          const int64_t h1 = std::min(r * p.stride[0] - p.padding[0] + p.dilation[0] * (p.kernel[0] - 1) + 1, h);
          for (int64_t c = 0; c < ow; ++c) {
            int64_t w0 = c * p.stride[1] - p.padding[1];
            while (w0 < 0) w0 += p.dilation[1];
            const int64_t w1 = std::min(c * p.stride[1] - p.padding[1] + p.dilation[1] * (p.kernel[1] - 1) + 1, w);
            A best = -INFINITY;
            int64_t arg = h0 * w + w0;  // a window of -inf reports its first cell inside the input
            for (int64_t i = h0; i < h1; i += p.dilation[0])
              for (int64_t j = w0; j < w1; j += p.dilation[1]) {
                const A v = static_cast<A>(in[i * w + j]);
                if (v > best || std::isnan(v)) {  // the first maximum; a NaN wins, as in PyTorch
                  best = v;
                  arg = i * w + j;
                }
              }
            y[r * ow + c] = static_cast<T>(best);
            idx[r * ow + c] = arg;
          }
        }
      }
    });
  });
}

}  // namespace ember
