// The library's version.
#pragma once

#include <string_view>

#include "runtime/device.h"

namespace ember {

/// "MAJOR.MINOR.PATCH" of the library.
const char* version();
/// True when this build contains the CUDA backend.
bool cuda_built();
/// Number of CUDA devices usable now (0 without CUDA or without a GPU).
int cuda_device_count();
/// Device::parse, plus "best": cuda:0 where a GPU is present, else the CPU (the tools' default).
Device parse_device(std::string_view name);

}  // namespace ember
