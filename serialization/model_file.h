// Reading and writing .ember model files (docs/FORMAT.md). The reader maps the file and verifies
// all of it before anything uses it: the identifier, the FlatBuffers verifier, then every count,
// id, shape, size and offset against the file, the operators against graph/ops.h, and the
// checksum. Any failure is an InvalidModel error naming what and where.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "graph/graph.h"
#include "runtime/tensor.h"

namespace ember {

/// Bytes of a model file, read-only; mapped from disk or held in memory (tests, fuzzing).
class FileBytes {
 public:
  virtual ~FileBytes() = default;
  virtual const uint8_t* data() const = 0;
  virtual size_t size() const = 0;
};

/// Maps `path` copy-on-write (writes through tensors made from it stay private to the process).
/// Throws Io naming the path when it cannot be opened or mapped.
std::shared_ptr<FileBytes> map_file(const std::string& path);
/// Holds `bytes` in memory.
std::shared_ptr<FileBytes> bytes_in_memory(std::string bytes);

struct ModelFileOptions {
  /// The checksum over the whole file (serialization/checksum.h). Only fuzzing turns it off, to reach the checks
  /// behind it with mutated files.
  bool verify_checksum = true;
};

struct ModelFile {
  graph::Graph graph;
  /// Per value: its stored data as a CPU tensor viewing the mapped file (zero-copy), or an
  /// undefined tensor for values without data.
  std::vector<Tensor> data;
  uint64_t checksum = 0;
  uint64_t file_size = 0;
  uint32_t version_major = 0, version_minor = 0;
};

/// Reads and verifies a model from `bytes`; `where` names it in errors (usually the path).
ModelFile read_model(std::shared_ptr<FileBytes> bytes, const std::string& where,
                     const ModelFileOptions& options = {});
/// read_model(map_file(path), path).
ModelFile read_model_file(const std::string& path, const ModelFileOptions& options = {});

/// Writes `graph` with `data` (per value id; defined for parameters, buffers and constants)
/// as a .ember file, atomically. Tensors may live on any device.
void write_model_file(const std::string& path, const graph::Graph& graph, const std::vector<Tensor>& data);
/// The same file's bytes, in memory. `check` false skips validating the graph and the data's
/// shapes, so tests and fuzzing seeds can make well-formed files with wrong contents.
std::string model_file_bytes(const graph::Graph& graph, const std::vector<Tensor>& data, bool check = true);

namespace format {
constexpr uint32_t kVersionMajor = 1;
constexpr uint32_t kVersionMinor = 0;
constexpr uint64_t kDataAlignment = 4096;  // the data segment starts on a page boundary
constexpr uint64_t kBlobAlignment = 64;    // each blob starts on a cache line
constexpr char kTrailerMagic[8] = {'E', 'M', 'B', 'R', 'H', 'S', 'H', '1'};
constexpr uint64_t kTrailerSize = 16;      // u64 checksum of every byte before it (checksum.h), then the magic
}  // namespace format

}  // namespace ember
