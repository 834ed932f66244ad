// Writing a file so that readers see either the old file or the complete new one, never a part:
// a hidden temporary beside the target (same filesystem), fsync, rename over the target, fsync
// of the folder. A write that fails or is abandoned removes the temporary and leaves the target
// as it was.
#pragma once

#include <cstddef>
#include <string>

namespace ember {

class AtomicFile {
 public:
  /// Creates the temporary for `path`; throws Io naming it when that fails.
  explicit AtomicFile(std::string path);
  ~AtomicFile();  // removes the temporary unless commit() succeeded
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t size);
  void write(const std::string& bytes) { write(bytes.data(), bytes.size()); }
  /// Zero bytes up to `size` bytes written in all (padding).
  void pad_to(size_t size);
  size_t written() const { return written_; }
  /// fsync, rename over the target, fsync of the folder.
  void commit();

 private:
  [[noreturn]] void fail(const std::string& what, const std::string& file);
  std::string path_, tmp_;
  int fd_ = -1;
  size_t written_ = 0;
  bool committed_ = false;
};

}  // namespace ember
