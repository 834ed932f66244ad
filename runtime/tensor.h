// Tensor: a strided view (sizes, strides, offset, dtype) of a Storage on one device.
// Tensor is a cheap shared handle, like torch::Tensor: copying it shares the data.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "runtime/device.h"
#include "runtime/dtype.h"
#include "runtime/scalar.h"
#include "runtime/shape.h"
#include "runtime/storage.h"

namespace ember {

/// Options for tensor factories. An unset dtype means the factory's default (float32, or the
/// type inferred from a fill value).
struct TensorOptions {
  std::optional<DType> dtype;
  Device device = Device::cpu();
};

struct AutogradMeta;  // autograd/meta.h
class Node;          // autograd/node.h
class Tensor;
/// A gradient hook: sees a gradient, may return a replacement (or an undefined tensor to keep it).
using GradHook = std::function<Tensor(const Tensor&)>;

struct TensorImpl {
  Storage storage;
  Shape sizes;
  Strides strides;  // in elements
  int64_t offset = 0;  // in elements
  DType dtype = kFloat32;
  // A tensor made from a Scalar argument: it takes part in type promotion at the lowest
  // priority, as PyTorch's wrapped numbers do.
  bool wrapped_number = false;
  // Autograd state (requires_grad, grad, grad_fn, hooks); null for most tensors.
  std::shared_ptr<AutogradMeta> autograd;
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  /// False for a default-constructed (undefined) tensor.
  bool defined() const { return impl_ != nullptr; }

  const Shape& sizes() const { return impl().sizes; }
  const Strides& strides() const { return impl().strides; }
  /// Size of one dim; negative dims count from the end.
  int64_t size(int64_t dim) const;
  int64_t stride(int64_t dim) const;
  int64_t dim() const { return static_cast<int64_t>(impl().sizes.size()); }
  int64_t numel() const;
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().storage->device(); }
  size_t itemsize() const { return ember::itemsize(dtype()); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * itemsize(); }
  int64_t storage_offset() const { return impl().offset; }
  const Storage& storage() const { return impl().storage; }
  bool is_wrapped_number() const { return impl().wrapped_number; }
  bool is_cpu() const { return device().is_cpu(); }
  bool is_cuda() const { return device().is_cuda(); }

  /// Row-major contiguous (strides of size-1 dims ignored, as in PyTorch).
  bool is_contiguous() const;
  /// True when both handles are the same tensor object.
  bool is_same(const Tensor& other) const { return impl_ == other.impl_; }
  /// True when both view the same storage.
  bool shares_storage(const Tensor& other) const { return storage() == other.storage(); }

  /// Address of the first element (storage data + offset).
  void* data() const;
  /// Typed address of the first element; T must match dtype() (kernels get T from dispatch).
  template <typename T>
  T* data_ptr() const {
    return static_cast<T*>(data());
  }

  /// Version counter shared by every view of the storage; in-place ops bump it.
  uint64_t version() const { return storage()->version(); }
  void bump_version() const { storage()->bump_version(); }

  // ---- conveniences backed by ops (defined in ops/) -------------------------------------
  /// The value of a one-element tensor.
  Scalar item() const;
  template <typename T>
  T item() const {
    return item().to<T>();
  }
  /// This tensor when contiguous, else a contiguous copy.
  Tensor contiguous() const;
  Tensor clone() const;
  /// A copy converted to dtype (this tensor itself when already of that dtype).
  Tensor to(DType dtype) const;
  /// A copy on device (this tensor itself when already there).
  Tensor to(Device device, bool non_blocking = false) const;
  Tensor view(const Shape& shape) const;
  Tensor reshape(const Shape& shape) const;
  Tensor transpose(int64_t dim0, int64_t dim1) const;
  Tensor permute(const std::vector<int64_t>& dims) const;
  Tensor expand(const Shape& shape) const;
  Tensor squeeze(std::optional<int64_t> dim = std::nullopt) const;
  Tensor unsqueeze(int64_t dim) const;
  Tensor select(int64_t dim, int64_t index) const;
  Tensor slice(int64_t dim, std::optional<int64_t> start = std::nullopt,
               std::optional<int64_t> end = std::nullopt, int64_t step = 1) const;
  /// PyTorch's repr: "tensor([1., 2.])", abridged when large.
  std::string str() const;

  // ---- autograd (defined in autograd/) -------------------------------------------------------
  bool requires_grad() const;
  /// Marks a leaf as needing gradients (floating-point dtypes only); returns *this.
  const Tensor& requires_grad_(bool on = true) const;
  /// The accumulated gradient of a leaf (or of a tensor that retain_grad()); undefined if none.
  Tensor grad() const;
  void set_grad(const Tensor& grad) const;
  /// The node that made this tensor (null for leaves and for tensors without grad).
  std::shared_ptr<Node> grad_fn() const;
  /// Which output of grad_fn this tensor is.
  uint32_t output_nr() const;
  /// True for tensors that autograd did not make (users' tensors, parameters).
  bool is_leaf() const;
  /// Same data, cut from the graph.
  Tensor detach() const;
  /// Computes gradients of this tensor with respect to the graph's leaves and accumulates them
  /// into their grad(). `gradient` may be omitted for one-element tensors.
  void backward(const Tensor& gradient = Tensor(), bool retain_graph = false, bool create_graph = false) const;
  /// Runs `hook` on this tensor's gradient when it is computed.
  void register_hook(GradHook hook) const;
  /// Leaves only: runs `hook` after a gradient was accumulated into grad() (data parallelism's
  /// bucketing uses it).
  void register_post_accumulate_grad_hook(std::function<void(const Tensor&)> hook) const;
  /// Keeps the gradient of a non-leaf tensor in grad().
  void retain_grad() const;

  TensorImpl& impl() const { return *impl_; }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

using TensorList = std::vector<Tensor>;

/// A tensor over `storage` with the given geometry (no copy).
Tensor make_tensor(Storage storage, Shape sizes, Strides strides, int64_t offset, DType dtype);
/// A view of `base`'s storage with new geometry.
Tensor make_view(const Tensor& base, Shape sizes, Strides strides, int64_t offset);
/// A new contiguous tensor, uninitialised; `op` names the caller in errors.
Tensor empty_tensor(const Shape& shape, DType dtype, Device device, const char* op = "empty");

std::ostream& operator<<(std::ostream& os, const Tensor& t);

}  // namespace ember
