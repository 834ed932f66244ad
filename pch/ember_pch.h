// Precompiled header of the library's common includes (meson's cpp_pch): the standard headers,
// the tensor and the CPU dispatch with Eigen, which every source would otherwise parse again
// (1.5-2.5 s of each file's compile on the 2-core CI machine, which builds the library three
// times: x86, aarch64, clang with ASan). Not ops/ops.h: in nn/ its free functions would make
// calls to nn's functions of the same names ambiguous.
#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "runtime/dispatch.h"
#include "runtime/tensor.h"
