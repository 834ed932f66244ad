#include "runtime/version.h"

#include "runtime/cuda_hooks.h"

#ifndef EMBER_VERSION
#error "EMBER_VERSION must be defined by the build"
#endif

namespace ember {

const char* version() { return EMBER_VERSION; }
bool cuda_built() { return cuda_hooks().is_built(); }
int cuda_device_count() { return cuda_hooks().device_count(); }

}  // namespace ember
