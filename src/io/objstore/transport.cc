#include "io/objstore/transport.h"

#include <cerrno>

#include "cairn/error.h"

namespace cairn::io::objstore {

Transport::Transport(const ObjectStoreOptions& options)
    : http_(HttpOptions{options.max_concurrent_requests, options.connect_timeout, options.request_timeout, 1024,
                        options.stall_timeout}),
      retry_(options.retry) {}

HttpResponse Transport::Send(const std::string& what, const std::function<HttpRequest()>& build) {
  return retry_.Run(what, [&](int) { return http_.Send(build()); });
}

HttpResponse Transport::Send(const std::string& what, const HttpRequest& request) {
  return retry_.Run(what, [&](int) { return http_.Send(request); });
}

ObjectStoreStats Transport::Stats() const {
  const auto& counters = http_.counters();
  return ObjectStoreStats{counters.requests.load(), retry_.retries(), counters.bytes_sent.load(),
                          counters.bytes_received.load()};
}

void ThrowHttpError(const std::string& what, const HttpResponse& response) {
  const std::string message = what + ": HTTP " + std::to_string(response.status) +
                              (response.body.empty() ? "" : " " + response.body.substr(0, 400));
  if (response.status == 404) throw NotFoundError(message);
  if (response.status == 401 || response.status == 403) throw IoError(message, EACCES);
  throw IoError(message, EIO);
}

std::pair<std::string, std::string> RangeHeader(uint64_t offset, size_t length) {
  return {"Range", "bytes=" + std::to_string(offset) + "-" + std::to_string(offset + length - 1)};
}

void RequireWholeRange(const std::string& url, const HttpResponse& response, uint64_t offset, size_t length) {
  if (response.sink_bytes == length) return;
  throw CorruptionError(url + ": read " + std::to_string(response.sink_bytes) + " bytes at offset " +
                        std::to_string(offset) + ", expected " + std::to_string(length) + " (object too short)");
}

}  // namespace cairn::io::objstore
