#include "cairn/error.h"

#include <cstring>

namespace cairn {

const char* ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kNotFound: return "not found";
    case ErrorCode::kAlreadyExists: return "already exists";
    case ErrorCode::kInvalidArgument: return "invalid argument";
    case ErrorCode::kCorruption: return "corruption";
    case ErrorCode::kTimeout: return "timeout";
    case ErrorCode::kIo: return "I/O error";
    case ErrorCode::kUnimplemented: return "unimplemented";
    case ErrorCode::kAborted: return "aborted";
  }
  return "unknown";
}

IoError::IoError(const std::string& message, int error_number)
    : Error(ErrorCode::kIo, message + ": " + std::strerror(error_number)), errno_(error_number) {}

}  // namespace cairn
