// The one retry policy of both object-store drivers: which outcomes are worth another attempt (408, 429, 5xx, no
// response at all) and how long to wait before it (exponential backoff with full jitter, as the AWS and GCS
// client libraries do, so that many writers that failed together do not retry together).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <string>

#include "cairn/object_store.h"
#include "io/objstore/http_client.h"

namespace cairn::io::objstore {

bool IsRetryableStatus(long status);

class RetryPolicy {
 public:
  explicit RetryPolicy(RetryOptions options) : options_(options) {}

  // Calls `attempt(n)` (n = 0, 1, ...) until it returns a response whose status is not retryable, and returns that
  // response (which may still be an error for the caller to interpret). A Retry-After in seconds on a retryable
  // answer lengthens the next wait (up to max_backoff). When every attempt failed, throws IoError
  // (TimeoutError when the last one timed out) naming `what` and the last failure.
  HttpResponse Run(const std::string& what, const std::function<HttpResponse(int attempt)>& attempt);

  // The wait before attempt `n` (n >= 1): uniform in [0, min(max_backoff, initial_backoff * 2^(n-1))].
  std::chrono::milliseconds Backoff(int n) const;

  uint64_t retries() const { return retries_.load(); }

 private:
  RetryOptions options_;
  std::atomic<uint64_t> retries_{0};
};

}  // namespace cairn::io::objstore
