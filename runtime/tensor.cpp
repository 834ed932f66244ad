#include "runtime/tensor.h"

#include "runtime/error.h"

namespace ember {

int64_t Tensor::size(int64_t d) const { return sizes()[wrap_dim(d, dim(), "size")]; }
int64_t Tensor::stride(int64_t d) const { return strides()[wrap_dim(d, dim(), "stride")]; }
int64_t Tensor::numel() const { return numel_of(sizes()); }

bool Tensor::is_contiguous() const {
  const Shape& s = sizes();
  const Strides& st = strides();
  int64_t expected = 1;
  for (size_t i = s.size(); i-- > 0;) {
    if (s[i] == 0) return true;
    if (s[i] == 1) continue;
    if (st[i] != expected) return false;
    expected *= s[i];
  }
  return true;
}

void* Tensor::data() const {
  char* base = static_cast<char*>(storage()->data());
  return base ? base + impl().offset * static_cast<int64_t>(itemsize()) : nullptr;
}

Tensor make_tensor(Storage storage, Shape sizes, Strides strides, int64_t offset, DType dtype) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::move(storage);
  impl->sizes = std::move(sizes);
  impl->strides = std::move(strides);
  impl->offset = offset;
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor make_view(const Tensor& base, Shape sizes, Strides strides, int64_t offset) {
  return make_tensor(base.storage(), std::move(sizes), std::move(strides), offset, base.dtype());
}

Tensor empty_tensor(const Shape& shape, DType dtype, Device device, const char* op) {
  int64_t n = checked_numel(shape, op);
  size_t bytes = 0;
  EMBER_CHECK(!__builtin_mul_overflow(static_cast<size_t>(n), itemsize(dtype), &bytes),
              InvalidArgument, "[", op, "] shape ", shape_str(shape), " of ", dtype,
              " needs more bytes than size_t can count");
  return make_tensor(allocate_storage(bytes, device), shape, contiguous_strides(shape), 0, dtype);
}

}  // namespace ember
