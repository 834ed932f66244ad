#include "runtime/error.h"

namespace ember {

const char* error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::InvalidArgument: return "InvalidArgument";
    case ErrorCode::ShapeMismatch: return "ShapeMismatch";
    case ErrorCode::DTypeMismatch: return "DTypeMismatch";
    case ErrorCode::DeviceMismatch: return "DeviceMismatch";
    case ErrorCode::OutOfMemory: return "OutOfMemory";
    case ErrorCode::InvalidModel: return "InvalidModel";
    case ErrorCode::Unsupported: return "Unsupported";
    case ErrorCode::Io: return "Io";
    case ErrorCode::Cuda: return "Cuda";
    case ErrorCode::Nccl: return "Nccl";
    case ErrorCode::Internal: return "Internal";
  }
  return "Unknown";
}

std::string list_str(const std::vector<int64_t>& values) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < values.size(); ++i) os << (i ? ", " : "") << values[i];
  os << ']';
  return os.str();
}

void throw_error(ErrorCode code, std::string message) { throw Error(code, std::move(message)); }

}  // namespace ember
