// CUDA binary kernels: comparisons, logical and bitwise ops, and where.
#include "ops/cuda/binary_kernels.cuh"

EMBER_BINARY_CUDA_INSTANTIATE(Eq)
EMBER_BINARY_CUDA_INSTANTIATE(Ne)
EMBER_BINARY_CUDA_INSTANTIATE(Lt)
EMBER_BINARY_CUDA_INSTANTIATE(Le)
EMBER_BINARY_CUDA_INSTANTIATE(Gt)
EMBER_BINARY_CUDA_INSTANTIATE(Ge)
EMBER_BINARY_CUDA_INSTANTIATE(LogicalAnd)
EMBER_BINARY_CUDA_INSTANTIATE(LogicalOr)
EMBER_BINARY_CUDA_INSTANTIATE(LogicalXor)
EMBER_BINARY_CUDA_INSTANTIATE(BitwiseAnd)
EMBER_BINARY_CUDA_INSTANTIATE(BitwiseOr)
EMBER_BINARY_CUDA_INSTANTIATE(BitwiseXor)

namespace ember {

void WhereOp::forward_cuda(const TensorList& inputs, const TensorList& outputs) {
  cuda_ops::dispatch<kAllSet>(inputs[1].dtype(), name(), [&]<typename T>() {
    cuda_ops::launch_elementwise<T, bool, T, T>(outputs[0], {inputs[0], inputs[1], inputs[2]}, binary_cuda::WhereFn<T>{});
  });
}

}  // namespace ember
