// CUDA binary kernels: rounding divisions, remainder, pow, maximum, minimum, relu's and gelu's gradients.
#include "ops/cuda/binary_kernels.cuh"

EMBER_BINARY_CUDA_INSTANTIATE(DivTrunc)
EMBER_BINARY_CUDA_INSTANTIATE(DivFloor)
EMBER_BINARY_CUDA_INSTANTIATE(Remainder)
EMBER_BINARY_CUDA_INSTANTIATE(Pow)
EMBER_BINARY_CUDA_INSTANTIATE(Maximum)
EMBER_BINARY_CUDA_INSTANTIATE(Minimum)
EMBER_BINARY_CUDA_INSTANTIATE(ReluBackward)
EMBER_BINARY_CUDA_INSTANTIATE(GeluBackward)
