#include "io/objstore/retry.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <random>
#include <thread>

#include "cairn/error.h"

namespace cairn::io::objstore {

bool IsRetryableStatus(long status) { return status == 408 || status == 429 || (status >= 500 && status <= 599); }

std::chrono::milliseconds RetryPolicy::Backoff(int n) const {
  const double cap = std::min<double>(static_cast<double>(options_.max_backoff.count()),
                                      static_cast<double>(options_.initial_backoff.count()) * std::pow(2.0, n - 1));
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::chrono::milliseconds(static_cast<int64_t>(std::uniform_real_distribution<double>(0, cap)(rng)));
}

HttpResponse RetryPolicy::Run(const std::string& what, const std::function<HttpResponse(int attempt)>& attempt) {
  const int attempts = std::max(1, options_.max_attempts);
  std::string last_failure;
  bool last_timed_out = false;
  std::chrono::milliseconds asked_wait{0};  // the server's Retry-After (in seconds), capped at max_backoff
  for (int n = 0; n < attempts; ++n) {
    if (n > 0) {
      retries_++;
      std::this_thread::sleep_for(std::max(Backoff(n), asked_wait));
    }
    try {
      HttpResponse response = attempt(n);
      if (!IsRetryableStatus(response.status)) return response;
      last_failure = "HTTP " + std::to_string(response.status) + " " + response.body.substr(0, 300);
      last_timed_out = false;
      const std::string retry_after = response.Header("retry-after");
      const bool seconds = !retry_after.empty() && retry_after.find_first_not_of("0123456789") == std::string::npos;
      asked_wait = std::min(options_.max_backoff,
                            seconds ? std::chrono::milliseconds(1000 * std::stoll(retry_after.substr(0, 6)))
                                    : std::chrono::milliseconds(0));
    } catch (const TransportFailure& failure) {
      last_failure = failure.message;
      last_timed_out = failure.timed_out;
    }
  }
  const std::string message = what + ": gave up after " + std::to_string(attempts) + " attempts; last: " + last_failure;
  if (last_timed_out) throw TimeoutError(message);
  throw IoError(message, EIO);
}

}  // namespace cairn::io::objstore
