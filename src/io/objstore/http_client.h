// HTTP requests over libcurl for the object-store drivers: one blocking call per request, a pool of reusable
// handles (so connections are kept alive), a cap on the requests in flight, per-request timeouts, and counters.
// Retrying is not done here but by RetryPolicy, which sees every attempt's outcome.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <semaphore>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cairn::io::objstore {

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string_view body;  // not owned: must outlive the call
  // When set, a successful (2xx) response body is written here instead of into HttpResponse::body, and must be
  // exactly `sink_size` bytes long: ranged reads land straight in the caller's buffer.
  char* sink = nullptr;
  size_t sink_size = 0;
};

struct HttpResponse {
  long status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  size_t sink_bytes = 0;  // bytes written to HttpRequest::sink

  std::string Header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

struct HttpOptions {
  int max_concurrent_requests = 32;
  std::chrono::milliseconds connect_timeout{10'000};
  // A request is abandoned when it moves fewer than low_speed_bytes per second for low_speed_time: this catches a
  // stalled server without capping the duration of a large transfer.
  std::chrono::milliseconds request_timeout{120'000};
  long low_speed_bytes = 1024;
  std::chrono::seconds low_speed_time{15};
};

// Thrown when no HTTP response came back at all (connection refused or reset, timeout, truncated body).
struct TransportFailure {
  std::string message;
  bool timed_out = false;
};

struct HttpCounters {
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> bytes_sent{0};
  std::atomic<uint64_t> bytes_received{0};
  std::atomic<uint64_t> transport_failures{0};
};

class HttpClient {
 public:
  explicit HttpClient(HttpOptions options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Returns whatever status the server sent; throws TransportFailure when there was no complete response.
  HttpResponse Send(const HttpRequest& request);

  HttpCounters& counters() const { return counters_; }

 private:
  void* AcquireHandle();
  void ReleaseHandle(void* handle);

  HttpOptions options_;
  std::counting_semaphore<> in_flight_;
  std::mutex mu_;
  std::vector<void*> idle_handles_;  // CURL*
  mutable HttpCounters counters_;
  const bool trace_;  // CAIRN_HTTP_TRACE set: every request and its status on stderr  // atomics, counted from const
                      // readers' point of view too
};

// RFC 3986 percent-encoding of everything but unreserved characters; with keep_slash, '/' is left as it is.
std::string UrlEncode(std::string_view text, bool keep_slash = false);

}  // namespace cairn::io::objstore
