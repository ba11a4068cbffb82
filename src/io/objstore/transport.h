// What both drivers share: the HTTP client, the retry policy around it, the mapping of a failed response to
// cairn's errors, and the counters.
#pragma once

#include <functional>
#include <string>

#include "cairn/object_store.h"
#include "io/objstore/http_client.h"
#include "io/objstore/retry.h"

namespace cairn::io::objstore {

class Transport {
 public:
  explicit Transport(const ObjectStoreOptions& options);

  // Builds the request afresh for each attempt (an S3 signature carries the time; a GCS token may be refreshed)
  // and sends it under the retry policy; returns the first non-retryable response.
  HttpResponse Send(const std::string& what, const std::function<HttpRequest()>& build);
  // As Send, for a request built once (no signature to renew).
  HttpResponse Send(const std::string& what, const HttpRequest& request);

  ObjectStoreStats Stats() const;
  HttpClient& http() { return http_; }
  RetryPolicy& retry() { return retry_; }

 private:
  HttpClient http_;
  RetryPolicy retry_;
};

// 404 -> NotFoundError, 401/403 -> IoError(EACCES), anything else -> IoError(EIO); the message names `what` and
// quotes the start of the server's reply.
[[noreturn]] void ThrowHttpError(const std::string& what, const HttpResponse& response);

inline bool IsSuccess(const HttpResponse& response) { return response.status >= 200 && response.status < 300; }

// How errors name an object: "s3://bucket/key".
inline std::string ObjectUrl(std::string_view scheme, const std::string& bucket, const std::string& key) {
  return std::string(scheme) + "://" + bucket + "/" + key;
}
// ThrowHttpError, naming the call and the object, unless `response` is a success.
inline void RequireSuccess(const HttpResponse& response, const char* what, std::string_view scheme,
                           const std::string& bucket, const std::string& key) {
  if (!IsSuccess(response)) ThrowHttpError(std::string(what) + " " + ObjectUrl(scheme, bucket, key), response);
}

// The Range header of a ranged read of `length` (> 0) bytes at `offset`.
std::pair<std::string, std::string> RangeHeader(uint64_t offset, size_t length);
// A successful ranged read that delivered fewer bytes than asked: the object is shorter than its reader thinks.
void RequireWholeRange(const std::string& url, const HttpResponse& response, uint64_t offset, size_t length);

}  // namespace cairn::io::objstore
