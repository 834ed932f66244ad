#include "ops/copy.h"

#include "autograd/node.h"
#include "ops/creation.h"
#include "ops/register.h"
#include "ops/view.h"
#include "runtime/cuda_hooks.h"
#include "runtime/dispatch.h"

namespace ember {

namespace {

// Moves a whole tensor to another device as contiguous bytes.
Tensor transfer(const Tensor& t, Device device, bool non_blocking) {
  Tensor src = t.contiguous();
  // An asynchronous copy to the host needs page-locked memory to land in.
  Tensor out = non_blocking && device.is_cpu()
                   ? make_tensor(cuda_hooks().pinned_storage(src.nbytes()), src.sizes(),
                                 contiguous_strides(src.sizes()), 0, src.dtype())
                   : empty_tensor(src.sizes(), src.dtype(), device, "to");
  if (src.nbytes() > 0)
    cuda_hooks().copy_bytes(out.data(), device, src.data(), src.device(), src.nbytes(), non_blocking,
                            src.is_cpu() ? src.storage() : out.storage());
  return out;
}

bool same_view(const Tensor& a, const Tensor& b) {
  return a.data() == b.data() && a.sizes() == b.sizes() && a.strides() == b.strides() &&
         a.dtype() == b.dtype() && a.device() == b.device();
}

}  // namespace

const Tensor& copy_(const Tensor& dst, const Tensor& src, bool non_blocking) {
  if (autograd::any_requires_grad({dst, src})) {
    check_rebase_allowed(dst, "copy_");
    Tensor s = src.to(dst.device()).to(dst.dtype());
    Shape b = broadcast_shapes(dst.sizes(), s.sizes(), "copy_");
    EMBER_CHECK(b == dst.sizes(), ShapeMismatch, "[copy_] source of shape ", shape_str(src.sizes()),
                " cannot be broadcast to the destination's shape ", shape_str(dst.sizes()));
    // clone() records a node even when src is a leaf, so dst's history leads to src's gradient.
    rebase_history(dst, expand(s, dst.sizes()).clone(), "copy_");
    return dst;
  }
  Shape b = broadcast_shapes(dst.sizes(), src.sizes(), "copy_");
  EMBER_CHECK(b == dst.sizes(), ShapeMismatch, "[copy_] source of shape ", shape_str(src.sizes()),
              " cannot be broadcast to the destination's shape ", shape_str(dst.sizes()));
  Tensor s = src;
  // A 0-d CPU source is a scalar: CopyOp's kernels read it on the host, no transfer needed.
  const bool cpu_scalar = s.is_cpu() && s.dim() == 0;
  if (s.device() != dst.device() && !cpu_scalar) {
    if (dst.is_contiguous() && s.sizes() == dst.sizes() && s.dtype() == dst.dtype()) {
      Tensor c = s.contiguous();  // straight byte copy into the destination
      if (c.nbytes() > 0)
        cuda_hooks().copy_bytes(dst.data(), dst.device(), c.data(), c.device(), c.nbytes(), non_blocking,
                                c.is_cpu() ? c.storage() : dst.storage());
      dst.bump_version();
      return dst;
    }
    s = transfer(s, dst.device(), false);
  }
  if (same_view(s, dst)) return dst;
  if (s.shares_storage(dst)) s = s.clone();  // overlapping views go through a temporary
  apply_into(std::make_shared<CopyOp>(), {s}, {dst});
  return dst;
}

Tensor cast(const Tensor& t, DType dtype) {
  if (t.is_cpu() && t.dim() == 0 && !autograd::any_requires_grad({t})) {
    // A number (every `x * 2.0` casts one): converted on the host, without an op's bookkeeping.
    Tensor out = empty_tensor({}, dtype, Device::cpu(), "cast");
    dispatch<kAllSet>(dtype, "cast", [&]<typename Out>() {
      dispatch<kAllSet>(t.dtype(), "cast", [&]<typename In>() { *out.data_ptr<Out>() = convert<Out>(*t.data_ptr<In>()); });
    });
    return out;
  }
  return apply1(std::make_shared<CopyOp>(), {t}, {t.sizes(), dtype});
}

const Tensor& fill_(const Tensor& t, const Scalar& value) {
  apply_into(std::make_shared<FillOp>(value), {}, {t});
  return t;
}

const Tensor& fill_(const Tensor& t, const Tensor& value) {
  EMBER_CHECK(value.dim() == 0, InvalidArgument,
              "[fill_] expected a 0-d value tensor, got shape ", shape_str(value.sizes()));
  return copy_(t, value);
}

const Tensor& zero_(const Tensor& t) { return fill_(t, 0); }

// ---- Tensor methods backed by ops ------------------------------------------------------------

Scalar Tensor::item() const {
  EMBER_CHECK(numel() == 1, InvalidArgument, "[item] expected a tensor with one element, got shape ",
              shape_str(sizes()));
  Tensor c = is_cpu() ? *this : to(Device::cpu());
  return dispatch<kAllSet>(dtype(), "item", [&]<typename T>() -> Scalar {
    T v = *static_cast<const T*>(c.data());
    if constexpr (std::is_same_v<T, bool>) return Scalar(v);
    else if constexpr (is_float_v<T>) return Scalar(static_cast<double>(v));
    else return Scalar(static_cast<int64_t>(v));
  });
}

Tensor Tensor::contiguous() const { return is_contiguous() ? *this : clone(); }

Tensor Tensor::clone() const { return cast(*this, dtype()); }

Tensor Tensor::to(DType d) const { return d == dtype() ? *this : cast(*this, d); }

Tensor Tensor::to(Device d, bool non_blocking) const {
  if (d == device()) return *this;
  if (d.is_cuda()) check_cuda_device(d, "to");
  Tensor out = transfer(*this, d, non_blocking);
  const Device from = device();
  autograd::record_function("to", {*this}, {out}, [from](const TensorList& g) {
    return TensorList{g[0].defined() ? g[0].to(from) : Tensor()};
  });
  return out;
}

void register_copy_ops(OpRegistry& r) {
  // In-place forms are recorded by rebasing the written tensor's history (see apply_into).
  for (const char* name : {"copy_", "fill_", "zero_", "to", "contiguous", "clone"})
    r.add("copy", name, kAllSet, {.cuda_kernel = true, .backward = true});
}

}  // namespace ember
