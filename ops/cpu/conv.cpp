// conv2d's forward on the CPU for float32 and float64. Per image, the input is unfolded into a
// [C·KH·KW, OH·OW] matrix (im2col; a 1×1 convolution with stride 1 and no padding reads the
// input as it is) and each group is one GEMM, W [O/g, C/g·KH·KW] × columns, written straight
// into the output's NCHW rows with the bias laid in first: no output transpose, no bias pass,
// and the unfolded matrix is one image's, not the batch's. Depthwise convolutions (one input
// channel per group) are a direct loop instead: their GEMMs would be a row of 9 per group.
// Half types and the gradients use the public-op form (conv2d_reference), which the tests also
// hold this kernel to.
#include <algorithm>

#include "ops/conv.h"
#include "ops/copy.h"
#include "ops/cpu/gemm.h"
#include "ops/creation.h"
#include "runtime/dispatch.h"
#include "runtime/parallel.h"

namespace ember {

namespace {

struct Geometry {
  int64_t n, c, h, w;    // input
  int64_t o, oh, ow;     // output
  int64_t kh, kw, groups, cg, og;
  int64_t sh, sw, ph, pw, dh, dw;
};

// Elements per parallel chunk: below this a thread is not worth waking.
constexpr int64_t kGrainElements = 1 << 15;

/// The output columns [lo, hi) whose input column x·stride + offset lies in [0, width).
struct ColumnRange {
  int64_t lo, hi;
};
ColumnRange columns_inside(int64_t offset, int64_t stride, int64_t width, int64_t out_width) {
  const int64_t lo = std::min(out_width, std::max<int64_t>(0, (-offset + stride - 1) / stride));
  const int64_t hi = std::max(lo, std::min(out_width, (width - offset + stride - 1) / stride));
  return {lo, hi};
}

// im2col's rows are short (7–112 elements per output row in resnet18), and a call of memmove or
// memset per row (std::copy, std::fill, or GCC turning a copy loop into one) cost more than the
// copy itself: 26% of resnet18's CPU forward on 2 threads. So these loops stay loops.
#if defined(__GNUC__) && !defined(__clang__)
#define EMBER_INLINE_COPY_LOOPS __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define EMBER_INLINE_COPY_LOOPS
#endif

/// cols[(c·KH + i)·KW + j][y·OW + x] = in[c][y·sh − ph + i·dh][x·sw − pw + j·dw], zero outside.
template <typename T>
EMBER_INLINE_COPY_LOOPS void im2col_rows(const T* in, const Geometry& g, T* cols, int64_t r0, int64_t r1) {
  const int64_t hw = g.oh * g.ow;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t c = r / (g.kh * g.kw), i = r / g.kw % g.kh, j = r % g.kw;
    const T* plane = in + c * g.h * g.w;
    const int64_t x_offset = j * g.dw - g.pw;
    const auto [x_lo, x_hi] = columns_inside(x_offset, g.sw, g.w, g.ow);
    for (int64_t y = 0; y < g.oh; ++y) {
      T* row = cols + r * hw + y * g.ow;
      const int64_t iy = y * g.sh - g.ph + i * g.dh;
      if (iy < 0 || iy >= g.h) {
        for (int64_t x = 0; x < g.ow; ++x) row[x] = T(0);
        continue;
      }
      const T* src = plane + iy * g.w + x_offset;  // input column x·sw + x_offset, in range for x_lo <= x < x_hi
      for (int64_t x = 0; x < x_lo; ++x) row[x] = T(0);
      if (g.sw == 1) {
        for (int64_t x = x_lo; x < x_hi; ++x) row[x] = src[x];
      } else {
        for (int64_t x = x_lo; x < x_hi; ++x) row[x] = src[x * g.sw];
      }
      for (int64_t x = x_hi; x < g.ow; ++x) row[x] = T(0);
    }
  }
}

template <typename T>
void im2col(const T* in, const Geometry& g, T* cols) {
  const int64_t rows = g.c * g.kh * g.kw, hw = g.oh * g.ow;
  parallel_for(0, rows, std::max<int64_t>(1, kGrainElements / hw),
               [&](int64_t r0, int64_t r1) { im2col_rows(in, g, cols, r0, r1); });
}

template <typename T>
void conv_gemm(const T* x, const T* w, const T* bias, T* out, const Geometry& g) {
  const int64_t hw = g.oh * g.ow, kg = g.cg * g.kh * g.kw;
  const bool as_is = g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0;
  Tensor cols = as_is ? Tensor() : empty({g.c * g.kh * g.kw, hw}, {dtype_of<T>, Device::cpu()});
  for (int64_t n = 0; n < g.n; ++n) {
    const T* image = x + n * g.c * g.h * g.w;
    T* y = out + n * g.o * hw;
    if (bias) {
      for (int64_t o = 0; o < g.o; ++o) std::fill(y + o * hw, y + (o + 1) * hw, bias[o]);
    }
    const T* b = image;
    if (!as_is) {
      im2col(image, g, cols.data_ptr<T>());
      b = cols.data_ptr<T>();
    }
    for (int64_t group = 0; group < g.groups; ++group)
      cpu::gemm(w + group * g.og * kg, g.og, kg, kg, 1, b + group * kg * hw, hw, hw, 1, y + group * g.og * hw,
                bias != nullptr);
  }
}

// Each output row starts at the bias and takes one tap at a time across the whole row (a
// multiply-add over contiguous outputs, which the compiler vectorises), only over the columns
// whose input is inside the image: no bounds check per element.
template <typename T>
void conv_depthwise(const T* x, const T* w, const T* bias, T* out, const Geometry& g) {
  const int64_t hw = g.oh * g.ow, taps = g.kh * g.kw;
  parallel_for(0, g.n * g.o, std::max<int64_t>(1, kGrainElements / (hw * taps)), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t n = p / g.o, o = p % g.o, c = o / g.og;
      const T* plane = x + (n * g.c + c) * g.h * g.w;
      const T* k = w + o * taps;
      T* y = out + p * hw;
      std::fill(y, y + hw, bias ? bias[o] : T(0));
      for (int64_t oy = 0; oy < g.oh; ++oy) {
        T* row = y + oy * g.ow;
        for (int64_t i = 0; i < g.kh; ++i) {
          const int64_t iy = oy * g.sh - g.ph + i * g.dh;
          if (iy < 0 || iy >= g.h) continue;
          const T* src = plane + iy * g.w;
          for (int64_t j = 0; j < g.kw; ++j) {
            const int64_t x_offset = j * g.dw - g.pw;
            const auto [x_lo, x_hi] = columns_inside(x_offset, g.sw, g.w, g.ow);
            const T tap = k[i * g.kw + j];
            if (g.sw == 1) {
              for (int64_t ox = x_lo; ox < x_hi; ++ox) row[ox] += tap * src[ox + x_offset];
            } else {
              for (int64_t ox = x_lo; ox < x_hi; ++ox) row[ox] += tap * src[ox * g.sw + x_offset];
            }
          }
        }
      }
    }
  });
}

}  // namespace

void Conv2dOp::forward_cpu(const TensorList& inputs, const TensorList& outputs) {
  const ConvParams& p = params;
  const Tensor& out = outputs[0];
  const DType dtype = inputs[0].dtype();
  if (dtype != kFloat32 && dtype != kFloat64) {
    copy_(out, conv2d_reference(inputs[0], inputs[1], inputs[2], p.stride, p.padding, p.dilation, p.groups));
    return;
  }
  if (out.numel() == 0) return;
  const Tensor x = inputs[0].contiguous(), w = inputs[1].contiguous();
  const Tensor bias = inputs[2].defined() ? inputs[2].contiguous() : Tensor();
  const Shape &xs = x.sizes(), &ws = w.sizes(), &ys = out.sizes();
  Geometry g{xs[0], xs[1], xs[2], xs[3], ys[1], ys[2], ys[3], ws[2], ws[3], p.groups, ws[1], ys[1] / p.groups,
             p.stride[0], p.stride[1], p.padding[0], p.padding[1], p.dilation[0], p.dilation[1]};
  const Tensor y = out.is_contiguous() ? out : empty(ys, {dtype, Device::cpu()});
  auto run = [&]<typename T>() {
    const T* b = bias.defined() ? bias.data_ptr<T>() : nullptr;
    if (g.cg == 1 && g.groups == g.c && g.groups > 1)
      conv_depthwise(x.data_ptr<T>(), w.data_ptr<T>(), b, y.data_ptr<T>(), g);
    else
      conv_gemm(x.data_ptr<T>(), w.data_ptr<T>(), b, y.data_ptr<T>(), g);
  };
  if (dtype == kFloat32) run.operator()<float>();
  else run.operator()<double>();
  if (!y.is_same(out)) copy_(out, y);
}

void ConvEpilogueOp::forward_cpu(const TensorList& inputs, const TensorList& outputs) {
  const Tensor& y = outputs[0];
  const Tensor& bias = inputs[1];
  const Tensor& residual = inputs[2];
  const int64_t planes = y.sizes()[0] * y.sizes()[1], channels = y.sizes()[1], hw = y.sizes()[2] * y.sizes()[3];
  dispatch<kFloatingSet>(y.dtype(), name(), [&]<typename T>() {
    using A = opmath_t<T>;
    T* py = y.data_ptr<T>();
    const T* pb = bias.defined() ? bias.data_ptr<T>() : nullptr;
    const T* pr = residual.defined() ? residual.data_ptr<T>() : nullptr;
    const bool has_lo = lo.has_value(), has_hi = hi.has_value();
    const A vlo = static_cast<A>(lo.value_or(0)), vhi = static_cast<A>(hi.value_or(0));
    parallel_for(0, planes, std::max<int64_t>(1, kGrainElements / std::max<int64_t>(hw, 1)), [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p) {
        const A b = pb ? static_cast<A>(pb[p % channels]) : A(0);
        T* row = py + p * hw;
        const T* res = pr ? pr + p * hw : nullptr;
        for (int64_t i = 0; i < hw; ++i) {
          A v = static_cast<A>(row[i]) + b;
          if (res) v += static_cast<A>(res[i]);
          // Comparisons false for NaN: a NaN stays NaN, as in relu and clamp.
          if (has_lo && v < vlo) v = vlo;
          if (has_hi && v > vhi) v = vhi;
          row[i] = static_cast<T>(v);
        }
      }
    });
  });
}

}  // namespace ember
