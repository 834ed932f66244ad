// `ember demo`: a short tour of tensors and ops on a chosen device.
#pragma once

#include <string>

namespace ember::tools {

/// Runs the tour on `device` ("best" picks CUDA when present); returns the exit code.
int run_demo(const std::string& device);

}  // namespace ember::tools
