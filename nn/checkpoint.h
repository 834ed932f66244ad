// Checkpoints: named tensors (model and optimizer state, step count, generator state) in one
// file, written atomically and verified on load.
//
// Layout (little-endian): "EMBRCKPT", u32 version (1), u32 record count, then per record:
// u32 name length, name, u8 dtype (0 bool, 1 uint8, 2 int8, 3 int32, 4 int64, 5 float16,
// 6 bfloat16, 7 float32, 8 float64), u8 ndim, i64 dims[ndim], u64 byte count, the bytes (C
// order); last, the XXH64 (seed 0) of everything before it. The reader checks the hash first,
// then every length against the bytes that remain, so a damaged file is an InvalidModel error,
// never a crash or an allocation the file's size does not justify.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "runtime/tensor.h"

namespace ember::nn {

class Module;
class Optimizer;

using TensorMap = std::map<std::string, Tensor>;

/// Writes `tensors` to `path` atomically: a temporary file in the same folder, fsync, rename
/// over `path`, fsync of the folder. On any failure `path` is left as it was.
void save_tensors(const std::string& path, const TensorMap& tensors);
/// Reads a file written by save_tensors into CPU tensors.
TensorMap load_tensors(const std::string& path);

/// Model state ("model.<key>"), optimizer state ("optim.<key>"), the step count and the CPU
/// generator's state, so a resumed run continues exactly.
void save_checkpoint(const std::string& path, const Module& model, const Optimizer& optimizer, int64_t step);
/// Restores what save_checkpoint wrote; returns the step count.
int64_t load_checkpoint(const std::string& path, Module& model, Optimizer& optimizer);

}  // namespace ember::nn
