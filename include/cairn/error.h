// The one error model of cairn: every failure is an exception derived from cairn::Error.
//
// The kinds mirror the Python exceptions Orbax raises (FileNotFoundError, ValueError, TimeoutError, ...), so the
// Python bindings map them one-to-one. Every message names the path or parameter it is about.
#pragma once

#include <stdexcept>
#include <string>

namespace cairn {

enum class ErrorCode {
  kNotFound,          // a file, directory, key or parameter does not exist (Python: FileNotFoundError / KeyError)
  kAlreadyExists,     // the destination exists and force was not given (Python: ValueError in Orbax)
  kInvalidArgument,   // the caller asked for something impossible or inconsistent (Python: ValueError)
  kCorruption,        // bytes on disk do not decode or fail their checksum
  kTimeout,           // a save, barrier or wait ran past its deadline (Python: TimeoutError)
  kIo,                // the operating system refused a call; errno() says why (Python: OSError)
  kUnimplemented,     // a valid format feature cairn does not support (Python: NotImplementedError)
  kAborted,           // given up because another process failed (Python: RuntimeError)
};

const char* ErrorCodeName(ErrorCode code);

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

class NotFoundError : public Error {
 public:
  explicit NotFoundError(const std::string& message) : Error(ErrorCode::kNotFound, message) {}
};

class AlreadyExistsError : public Error {
 public:
  explicit AlreadyExistsError(const std::string& message) : Error(ErrorCode::kAlreadyExists, message) {}
};

class InvalidArgumentError : public Error {
 public:
  explicit InvalidArgumentError(const std::string& message) : Error(ErrorCode::kInvalidArgument, message) {}
};

class CorruptionError : public Error {
 public:
  explicit CorruptionError(const std::string& message) : Error(ErrorCode::kCorruption, message) {}
};

class TimeoutError : public Error {
 public:
  explicit TimeoutError(const std::string& message) : Error(ErrorCode::kTimeout, message) {}
};

class IoError : public Error {
 public:
  // `message` says what was attempted on which path; the errno text is appended.
  IoError(const std::string& message, int error_number);
  int error_number() const noexcept { return errno_; }

 private:
  int errno_;
};

class UnimplementedError : public Error {
 public:
  explicit UnimplementedError(const std::string& message) : Error(ErrorCode::kUnimplemented, message) {}
};

class AbortedError : public Error {
 public:
  explicit AbortedError(const std::string& message) : Error(ErrorCode::kAborted, message) {}
};

}  // namespace cairn
