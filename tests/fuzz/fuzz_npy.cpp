// libFuzzer harness for the .npy reader: any bytes give a tensor or an ember::Error. The reader
// takes a path, so each input is written to an in-memory file (memfd) and read through
// /proc/self/fd.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "ember.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const int fd = memfd_create("fuzz.npy", 0);
  if (fd < 0) return 0;
  size_t done = 0;
  while (done < size) {
    const ssize_t k = write(fd, data + done, size - done);
    if (k <= 0) break;
    done += static_cast<size_t>(k);
  }
  try {
    ember::Tensor t = ember::load_npy("/proc/self/fd/" + std::to_string(fd));
    (void)t;
  } catch (const ember::Error&) {
  }
  close(fd);
  return 0;
}
