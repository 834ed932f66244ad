// NumPy .npy files (format versions 1.0-3.0): little-endian, C order, the dtypes ember has.
#pragma once

#include <string>

#include "runtime/tensor.h"

namespace ember {

/// Reads a .npy file into a new CPU tensor. Throws Io if the file cannot be read and
/// InvalidModel naming what is wrong for a malformed header, an unsupported dtype or byte
/// order, Fortran order, or a data size that does not match the shape.
Tensor load_npy(const std::string& path);

/// Writes `t` (any device; copied to the CPU, C order) as a version 1.0 .npy file, atomically.
/// bfloat16 has no NumPy dtype and is refused (Unsupported); convert it first.
void save_npy(const std::string& path, const Tensor& t);

}  // namespace ember
