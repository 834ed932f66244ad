// CUDA binary kernels: add, sub, mul, div.
#include "ops/cuda/binary_kernels.cuh"

EMBER_BINARY_CUDA_INSTANTIATE(Add)
EMBER_BINARY_CUDA_INSTANTIATE(Sub)
EMBER_BINARY_CUDA_INSTANTIATE(Mul)
EMBER_BINARY_CUDA_INSTANTIATE(Div)
