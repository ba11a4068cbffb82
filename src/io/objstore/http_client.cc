#include "io/objstore/http_client.h"

#include <curl/curl.h>
#include <strings.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace cairn::io::objstore {
namespace {

void GlobalInitOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Transfer {
  CURL* curl;
  const HttpRequest* request;
  HttpResponse* response;
  bool overflow = false;
};

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * count;
  long status = 0;
  curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
  if (t->request->sink && status >= 200 && status < 300) {
    // A ranged read lands in the caller's buffer; more bytes than asked for is a broken response.
    if (t->response->sink_bytes + n > t->request->sink_size) {
      t->overflow = true;
      return 0;
    }
    std::memcpy(t->request->sink + t->response->sink_bytes, data, n);
    t->response->sink_bytes += n;
  } else {
    t->response->body.append(data, n);
  }
  return n;
}

size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* response = static_cast<HttpResponse*>(user);
  const size_t n = size * count;
  std::string_view line(data, n);
  if (line.starts_with("HTTP/")) {
    response->headers.clear();  // a new status line (after 100 Continue or a redirect) starts a new header block
    return n;
  }
  const auto colon = line.find(':');
  if (colon == std::string_view::npos) return n;
  std::string name(line.substr(0, colon));
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' '))
    value.remove_suffix(1);
  response->headers[name] = std::string(value);
  return n;
}

}  // namespace

HttpClient::HttpClient(HttpOptions options)
    : options_(options),
      in_flight_(std::max(1, options.max_concurrent_requests)),
      trace_(std::getenv("CAIRN_HTTP_TRACE") != nullptr) {
  GlobalInitOnce();
}

HttpClient::~HttpClient() {
  for (void* handle : idle_handles_) curl_easy_cleanup(static_cast<CURL*>(handle));
}

void* HttpClient::AcquireHandle() {
  {
    std::lock_guard lock(mu_);
    if (!idle_handles_.empty()) {
      void* handle = idle_handles_.back();
      idle_handles_.pop_back();
      return handle;
    }
  }
  return curl_easy_init();
}

void HttpClient::ReleaseHandle(void* handle) {
  // curl_easy_reset clears the options but keeps the handle's open connections, which is the point of pooling.
  curl_easy_reset(static_cast<CURL*>(handle));
  std::lock_guard lock(mu_);
  idle_handles_.push_back(handle);
}

HttpResponse HttpClient::Send(const HttpRequest& request) {
  in_flight_.acquire();
  struct Release {
    HttpClient* self;
    void* handle;
    curl_slist* headers = nullptr;
    ~Release() {
      curl_slist_free_all(headers);
      if (handle) self->ReleaseHandle(handle);
      self->in_flight_.release();
    }
  } guard{this, AcquireHandle()};
  CURL* curl = static_cast<CURL*>(guard.handle);
  if (!curl) throw TransportFailure{"curl_easy_init failed"};

  HttpResponse response;
  Transfer transfer{curl, &request, &response};
  curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);  // no SIGALRM for timeouts: we run on many threads
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options_.connect_timeout.count()));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.request_timeout.count()));
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, options_.low_speed_bytes);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, static_cast<long>(options_.low_speed_time.count()));
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &transfer);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &response);
  // Without this, curl decompresses nothing and passes Content-Encoding through, which is what a byte store wants.
  curl_easy_setopt(curl, CURLOPT_HTTP_CONTENT_DECODING, 0L);

  if (request.method == "GET") {
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  } else if (request.method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    if (request.method != "DELETE" || !request.body.empty()) {
      // The body is sent from the caller's memory, never copied (a staging buffer streams straight out).
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.body.empty() ? "" : request.body.data());
    }
  }
  for (const auto& [name, value] : request.headers) {
    guard.headers = curl_slist_append(guard.headers, (name + ": " + value).c_str());
  }
  // No "Expect: 100-continue" round trip before each upload, and no default form content type.
  guard.headers = curl_slist_append(guard.headers, "Expect:");
  bool has_content_type = false;
  for (const auto& header : request.headers) has_content_type |= strcasecmp(header.first.c_str(), "content-type") == 0;
  if (!has_content_type && request.method != "GET" && request.method != "HEAD") {
    guard.headers = curl_slist_append(guard.headers, "Content-Type: application/octet-stream");
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, guard.headers);

  counters_.requests++;
  counters_.bytes_sent += request.body.size();
  const CURLcode rc = curl_easy_perform(curl);
  if (rc != CURLE_OK || transfer.overflow) {
    counters_.transport_failures++;
    std::string message = transfer.overflow ? "response longer than the requested range" : curl_easy_strerror(rc);
    throw TransportFailure{request.method + " " + request.url + ": " + message, rc == CURLE_OPERATION_TIMEDOUT};
  }
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.status);
  counters_.bytes_received += response.body.size() + response.sink_bytes;
  if (trace_) {
    std::fprintf(stderr, "cairn http: %s %s -> %ld (%zu bytes out, %zu in)\n", request.method.c_str(),
                 request.url.c_str(), response.status, request.body.size(), response.body.size() + response.sink_bytes);
  }
  return response;
}

std::string UrlEncode(std::string_view text, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

}  // namespace cairn::io::objstore
