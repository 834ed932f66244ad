// Errors: one rule for the whole C++ API. Everything that fails throws ember::Error, which
// carries an ErrorCode and a message naming the op or file and what was expected.
#pragma once

#include <cstdint>
#include <exception>
#include <sstream>
#include <string>
#include <vector>

namespace ember {

enum class ErrorCode {
  InvalidArgument,
  ShapeMismatch,
  DTypeMismatch,
  DeviceMismatch,
  OutOfMemory,
  InvalidModel,
  Unsupported,
  Io,
  Cuda,
  Nccl,
  Internal,
};

/// Name of an error code, e.g. "ShapeMismatch".
const char* error_code_name(ErrorCode code);

/// The one exception type ember throws.
class Error : public std::exception {
 public:
  Error(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}
  ErrorCode code() const noexcept { return code_; }
  const char* what() const noexcept override { return message_.c_str(); }
  const std::string& message() const noexcept { return message_; }

 private:
  ErrorCode code_;
  std::string message_;
};

/// Concatenates anything printable with operator<< into one string.
template <typename... Args>
std::string str_cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

/// Formats a list of integers as "[2, 3]", the way messages print shapes.
std::string list_str(const std::vector<int64_t>& values);

[[noreturn]] void throw_error(ErrorCode code, std::string message);

}  // namespace ember

/// Throws ember::Error(ErrorCode::code, message pieces...) when cond is false.
#define EMBER_CHECK(cond, code, ...)                                                  \
  do {                                                                                \
    if (!(cond)) [[unlikely]]                                                         \
      ::ember::throw_error(::ember::ErrorCode::code, ::ember::str_cat(__VA_ARGS__)); \
  } while (0)

/// Internal invariant; stays on in release builds.
#define EMBER_ASSERT(cond, ...)                                                          \
  do {                                                                                   \
    if (!(cond)) [[unlikely]]                                                            \
      ::ember::throw_error(::ember::ErrorCode::Internal,                                 \
                           ::ember::str_cat("internal error at ", __FILE__, ":", __LINE__, \
                                            ": " #cond " ", ##__VA_ARGS__));             \
  } while (0)
