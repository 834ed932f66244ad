// Internal helpers of the CUDA backend (kernels and library calls use these).
#pragma once

#include <cuda_runtime.h>

#include "runtime/cuda/check.h"
#include "runtime/cuda/cuda.h"

namespace ember::cuda_detail {

/// The stream ops on `device` run on from this thread.
cudaStream_t stream(int device);
/// Properties cached per device.
const cudaDeviceProp& device_prop(int device);

}  // namespace ember::cuda_detail
