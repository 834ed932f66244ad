// Moving a loaded model's weights from the mapped file to a GPU.
#pragma once

#include <vector>

#include "runtime/tensor.h"

namespace ember {

/// Replaces each defined CPU tensor in `tensors` with a copy on CUDA `device`: one transfer per
/// tensor, staged through two pinned buffers so that copying the next weights out of the page
/// cache (on every core) overlaps the DMA of the previous ones. Returns when all have arrived.
void upload_to_cuda(std::vector<Tensor>& tensors, Device device);

}  // namespace ember
