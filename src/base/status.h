// Errors as values: Status for operations without a result, Result<T> for those with one.
// Expected failures (bad input, missing file, corrupt data) travel as values; broken
// invariants use IRIS_CHECK (check.h).
#pragma once

#include <string>
#include <string_view>
#include <tl/expected.hpp>
#include <utility>

namespace iris {

// What kind of failure; the gateway maps each to one HTTP status in one place.
enum class ErrorCode {
  kOk = 0,
  kInvalidArgument,     // the caller's input is malformed or out of range
  kNotFound,            // a file, tensor, model or key that does not exist
  kDataLoss,            // a file that is truncated or corrupt
  kFailedPrecondition,  // the input is well formed but unusable here (wrong model kind, ...)
  kOutOfRange,          // past the end of something (context length, file)
  kUnimplemented,       // a valid feature iris does not support (yet)
  kResourceExhausted,   // a limit was hit (memory, pixels, tokens)
  kDeadlineExceeded,
  kUnavailable,
  kPermissionDenied,
  kInternal,  // a bug in iris
};

std::string_view ErrorCodeName(ErrorCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

  bool ok() const { return code_ == ErrorCode::kOk; }
  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "NotFound: message" (or "OK").
  std::string ToString() const;

  // Returns a copy whose message is "prefix: message" (context added by a caller).
  Status WithContext(std::string_view prefix) const;

 private:
  ErrorCode code_ = ErrorCode::kOk;
  std::string message_;
};

inline Status OkStatus() { return Status(); }
inline Status InvalidArgument(std::string m) { return {ErrorCode::kInvalidArgument, std::move(m)}; }
inline Status NotFound(std::string m) { return {ErrorCode::kNotFound, std::move(m)}; }
inline Status DataLoss(std::string m) { return {ErrorCode::kDataLoss, std::move(m)}; }
// A damaged file: its path, then what is wrong with it.
inline Status DataLossIn(const std::string& path, const std::string& what) {
  return DataLoss(path + ": " + what);
}
inline Status FailedPrecondition(std::string m) {
  return {ErrorCode::kFailedPrecondition, std::move(m)};
}
inline Status OutOfRange(std::string m) { return {ErrorCode::kOutOfRange, std::move(m)}; }
inline Status Unimplemented(std::string m) { return {ErrorCode::kUnimplemented, std::move(m)}; }
inline Status ResourceExhausted(std::string m) {
  return {ErrorCode::kResourceExhausted, std::move(m)};
}
inline Status Internal(std::string m) { return {ErrorCode::kInternal, std::move(m)}; }

// Result<T> holds a T or a non-OK Status. Shaped like std::expected.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Status status)                      // NOLINT(google-explicit-constructor)
      : v_(tl::unexpected<Status>(std::move(status))) {}

  bool ok() const { return v_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : v_.error();
  }
  T& value() & { return *v_; }
  const T& value() const& { return *v_; }
  T&& value() && { return std::move(*v_); }
  T& operator*() & { return *v_; }
  const T& operator*() const& { return *v_; }
  T&& operator*() && { return std::move(*v_); }
  T* operator->() { return &*v_; }
  const T* operator->() const { return &*v_; }

 private:
  tl::expected<T, Status> v_;
};

namespace internal {
inline Status AsStatus(Status s) { return s; }
template <typename T>
Status AsStatus(const Result<T>& r) {
  return r.status();
}
}  // namespace internal

}  // namespace iris

#define IRIS_CONCAT_INNER_(a, b) a##b
#define IRIS_CONCAT_(a, b) IRIS_CONCAT_INNER_(a, b)

// Returns from the enclosing function if `expr` (a Status or Result) is not OK.
#define IRIS_RETURN_IF_ERROR(expr)                                  \
  do {                                                              \
    ::iris::Status iris_status_ = ::iris::internal::AsStatus(expr); \
    if (!iris_status_.ok()) return iris_status_;                    \
  } while (0)

// `IRIS_ASSIGN_OR_RETURN(auto x, MakeX());` declares x from a Result or returns its error.
#define IRIS_ASSIGN_OR_RETURN(lhs, expr) \
  IRIS_ASSIGN_OR_RETURN_IMPL_(IRIS_CONCAT_(iris_result_, __LINE__), lhs, expr)
#define IRIS_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return tmp.status();               \
  lhs = std::move(tmp).value()
