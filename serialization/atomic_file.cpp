#include "serialization/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "runtime/error.h"

namespace ember {

namespace {

std::filesystem::path folder_of(const std::filesystem::path& target) {
  return target.has_parent_path() ? target.parent_path() : std::filesystem::path(".");
}

}  // namespace

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  const std::filesystem::path target(path_);
  // Built by appending: GCC 12 warns falsely (-Wrestrict) on "literal" + std::string temporaries.
  // A unique name (mkstemp), so concurrent writers of one target never share a temporary.
  std::string name = ".";
  name.append(target.filename().string()).append(".tmp.XXXXXX");
  std::string tmpl = (folder_of(target) / name).string();
  fd_ = ::mkstemp(tmpl.data());
  tmp_ = tmpl;
  if (fd_ < 0) fail("cannot create", tmp_);
  // mkstemp makes the file 0600; a saved model or checkpoint gets the usual 0666 minus umask.
  const mode_t mask = ::umask(0);
  ::umask(mask);
  ::fchmod(fd_, 0666 & ~mask);
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(tmp_.c_str());
}

void AtomicFile::fail(const std::string& what, const std::string& file) {
  const int err = errno;
  throw_error(ErrorCode::Io, str_cat("cannot write ", path_, ": ", what, " ", file, ": ", std::strerror(err)));
}

void AtomicFile::write(const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::write(fd_, p + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("write to", tmp_);  // ENOSPC lands here, the target untouched
    done += static_cast<size_t>(n);
  }
  written_ += size;
}

void AtomicFile::pad_to(size_t size) {
  if (size <= written_) return;
  std::vector<char> zeros(std::min<size_t>(size - written_, 1 << 16), 0);
  while (written_ < size) write(zeros.data(), std::min(zeros.size(), size - written_));
}

void AtomicFile::commit() {
  if (::fsync(fd_) != 0) fail("fsync of", tmp_);
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) fail("close of", tmp_);
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) fail("rename over the target of", tmp_);
  committed_ = true;
  // The rename is durable once the folder's entry is on disk.
  int dfd = ::open(folder_of(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace ember
