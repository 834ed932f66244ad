#include "runtime/dispatch.h"

namespace ember {

void throw_unsupported_dtype(const char* op, DType dtype) {
  throw_error(ErrorCode::Unsupported, str_cat("[", op, "] not supported for dtype ", dtype));
}

}  // namespace ember
