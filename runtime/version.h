// The library's version.
#pragma once

namespace ember {

/// "MAJOR.MINOR.PATCH" of the library.
const char* version();
/// True when this build contains the CUDA backend.
bool cuda_built();
/// Number of CUDA devices usable now (0 without CUDA or without a GPU).
int cuda_device_count();

}  // namespace ember
