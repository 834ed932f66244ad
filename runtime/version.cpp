#include "runtime/version.h"

#include "runtime/cuda_hooks.h"

#ifndef EMBER_VERSION
#error "EMBER_VERSION must be defined by the build"
#endif

namespace ember {

const char* version() { return EMBER_VERSION; }
bool cuda_built() { return cuda_hooks().is_built(); }
int cuda_device_count() { return cuda_hooks().device_count(); }

Device parse_device(std::string_view name) {
  if (name == "best") return cuda_device_count() > 0 ? Device::cuda(0) : Device::cpu();
  return Device::parse(name);
}

}  // namespace ember
