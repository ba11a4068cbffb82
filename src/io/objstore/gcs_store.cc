// The GCS driver, over the JSON API: simple (media) uploads for small objects, resumable uploads in chunks for
// large ones, ranged reads with alt=media, object listing with prefix, delimiter and pages, deletes (many at once,
// in parallel: GCS's batch endpoint is a multipart/mixed protocol of its own, and the requests in flight are
// capped anyway), rewriteTo (server-side copies of any size).
#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <nlohmann/json.hpp>

#include "cairn/error.h"
#include "core/thread_pool.h"
#include "io/objstore/gcs_auth.h"
#include "io/objstore/object_store.h"
#include "io/objstore/transport.h"

namespace cairn::io::objstore {
namespace {

std::string DefaultEndpoint(const ObjectStoreOptions& options) {
  std::string endpoint = options.endpoint;
  if (endpoint.empty()) {
    const char* emulator = std::getenv("STORAGE_EMULATOR_HOST");
    endpoint = emulator && *emulator ? emulator : "https://storage.googleapis.com";
  }
  if (endpoint.find("://") == std::string::npos)
    endpoint = "http://" + endpoint;  // "localhost:4443", as gcloud takes it
  while (!endpoint.empty() && endpoint.back() == '/') endpoint.pop_back();
  return endpoint;
}

nlohmann::json ParseJson(const std::string& what, const std::string& body) {
  try {
    return nlohmann::json::parse(body);
  } catch (const nlohmann::json::exception& e) {
    throw IoError(what + ": the reply is not JSON: " + e.what(), EIO);
  }
}

class GcsStore final : public ObjectStore {
 public:
  explicit GcsStore(ObjectStoreOptions options)
      : options_(std::move(options)),
        endpoint_(DefaultEndpoint(options_)),
        transport_(options_),
        auth_(options_, transport_) {}

  std::string_view scheme() const override { return "gs"; }
  const ObjectStoreOptions& options() const override { return options_; }

  void Put(const std::string& bucket, const std::string& key, std::string_view data) override {
    const std::string url =
        endpoint_ + "/upload/storage/v1/b/" + UrlEncode(bucket) + "/o?uploadType=media&name=" + UrlEncode(key);
    Require(Send("PUT " + Url(bucket, key), "POST", url, {}, data), "PUT", bucket, key);
  }

  std::optional<uint64_t> Head(const std::string& bucket, const std::string& key) override {
    HttpResponse response = Send("HEAD " + Url(bucket, key), "GET", ObjectUrl(bucket, key) + "?fields=size");
    if (response.status == 404) return std::nullopt;
    Require(response, "HEAD", bucket, key);
    const auto reply = ParseJson("HEAD " + Url(bucket, key), response.body);
    const auto& size = reply.at("size");
    return size.is_string() ? std::stoull(size.get<std::string>()) : size.get<uint64_t>();
  }

  void Get(const std::string& bucket, const std::string& key, uint64_t offset, size_t length, char* out) override {
    if (length == 0) return;
    HttpRequest request;
    request.url = ObjectUrl(bucket, key) + "?alt=media";
    request.headers.push_back(RangeHeader(offset, length));
    request.sink = out;
    request.sink_size = length;
    HttpResponse response = Send("GET " + Url(bucket, key), request);
    Require(response, "GET", bucket, key);
    RequireWholeRange(Url(bucket, key), response, offset, length);
  }

  ListResult List(const std::string& bucket, const std::string& prefix, bool delimited, int max_keys) override {
    return ListInPages(max_keys, options_.list_page_size, [&](int size, const std::string& token, ListResult& result) {
      std::string url = endpoint_ + "/storage/v1/b/" + UrlEncode(bucket) + "/o?prefix=" + UrlEncode(prefix) +
                        "&fields=" + UrlEncode("items(name,size),prefixes,nextPageToken");
      if (delimited) url += "&delimiter=%2F";
      url += "&maxResults=" + std::to_string(size);
      if (!token.empty()) url += "&pageToken=" + UrlEncode(token);
      HttpResponse response = Send("LIST " + Url(bucket, prefix), "GET", url);
      Require(response, "LIST", bucket, prefix);
      const auto reply = ParseJson("LIST " + Url(bucket, prefix), response.body);
      for (const auto& item : reply.value("items", nlohmann::json::array())) {
        const auto& item_size = item.at("size");
        result.objects.push_back({item.at("name").get<std::string>(), item_size.is_string()
                                                                          ? std::stoull(item_size.get<std::string>())
                                                                          : item_size.get<uint64_t>()});
      }
      for (const auto& sub : reply.value("prefixes", nlohmann::json::array())) result.prefixes.push_back(sub);
      return reply.value("nextPageToken", "");
    });
  }

  void Delete(const std::string& bucket, const std::vector<std::string>& keys) override {
    if (keys.empty()) return;
    ParallelFor(
        keys.size(),
        [&](size_t i) {
          HttpResponse response = Send("DELETE " + Url(bucket, keys[i]), "DELETE", ObjectUrl(bucket, keys[i]));
          if (response.status != 404) Require(response, "DELETE", bucket, keys[i]);
        },
        DeletePool());
  }

  // objects.rewrite rather than objects.copy: a copy that the service cannot finish in one call (a large object,
  // another location or storage class) answers with a rewriteToken to continue from, where copy would fail.
  void Copy(const std::string& from_bucket, const std::string& from, const std::string& to_bucket,
            const std::string& to) override {
    const std::string what = "COPY " + Url(from_bucket, from) + " to " + Url(to_bucket, to);
    const std::string url = ObjectUrl(from_bucket, from) + "/rewriteTo/b/" + UrlEncode(to_bucket) + "/o/" +
                            UrlEncode(to) + "?fields=" + UrlEncode("done,rewriteToken");
    std::string token;
    for (int call = 0;; ++call) {
      HttpResponse response = Send(what, "POST", token.empty() ? url : url + "&rewriteToken=" + UrlEncode(token),
                                   {{"Content-Type", "application/json"}}, "{}");
      Require(response, "COPY", from_bucket, from);
      const auto reply = ParseJson(what, response.body);
      if (reply.value("done", false)) return;
      token = reply.value("rewriteToken", "");
      // Each call copies at least its share (GCS: up to ~1 GiB a call); a reply that neither finishes nor lets the
      // copy go on, or a copy that never ends, is the service's error, not a loop to run forever.
      if (token.empty() || call >= 100'000) throw IoError(what + ": the rewrite did not finish", EIO);
    }
  }

  std::unique_ptr<Upload> StartUpload(const std::string& bucket, const std::string& key) override;

  ObjectStoreStats Stats() const override { return transport_.Stats(); }

  HttpResponse Send(const std::string& what, const HttpRequest& base) {
    return transport_.Send(what, [&] {
      HttpRequest request = base;
      if (auto authorization = auth_.AuthorizationHeader())
        request.headers.emplace_back("Authorization", *authorization);
      return request;
    });
  }

  HttpResponse Send(const std::string& what, const std::string& method, const std::string& url,
                    std::vector<std::pair<std::string, std::string>> headers = {}, std::string_view body = {}) {
    HttpRequest request;
    request.method = method;
    request.url = url;
    request.headers = std::move(headers);
    request.body = body;
    return Send(what, request);
  }

  std::string ObjectUrl(const std::string& bucket, const std::string& key) const {
    return endpoint_ + "/storage/v1/b/" + UrlEncode(bucket) + "/o/" + UrlEncode(key);
  }
  const std::string& endpoint() const { return endpoint_; }

  static std::string Url(const std::string& bucket, const std::string& key) {
    return objstore::ObjectUrl("gs", bucket, key);
  }
  static void Require(const HttpResponse& response, const char* what, const std::string& bucket,
                      const std::string& key) { RequireSuccess(response, what, "gs", bucket, key); }

  Transport& transport() { return transport_; }

 private:
  ThreadPool& DeletePool() {
    std::call_once(delete_pool_once_, [&] {
      delete_pool_ = std::make_unique<ThreadPool>(static_cast<size_t>(std::max(1, options_.max_concurrent_requests)));
    });
    return *delete_pool_;
  }

  ObjectStoreOptions options_;
  std::string endpoint_;
  Transport transport_;
  GcsAuth auth_;
  std::once_flag delete_pool_once_;
  std::unique_ptr<ThreadPool> delete_pool_;  // as many threads as requests may be in flight; made on first use
};

// A resumable upload session: each part is PUT at its offset with "Content-Range: bytes a-b/*" (308 = more to
// come), the last with the total. After a broken connection the session is asked how much it has (bytes */*) and
// the rest of the part is sent from there, so a retry never duplicates or loses bytes.
class GcsUpload final : public Upload {
 public:
  GcsUpload(GcsStore& store, std::string bucket, std::string key)
      : store_(store), bucket_(std::move(bucket)), key_(std::move(key)) {
    const std::string url = store_.endpoint() + "/upload/storage/v1/b/" + UrlEncode(bucket_) +
                            "/o?uploadType=resumable&name=" + UrlEncode(key_);
    HttpResponse response = store_.Send("start upload " + GcsStore::Url(bucket_, key_), "POST", url,
                                        {{"Content-Type", "application/json"}}, "{}");
    GcsStore::Require(response, "start upload", bucket_, key_);
    session_ = response.Header("location");
    if (session_.empty()) throw IoError("start upload " + GcsStore::Url(bucket_, key_) + ": no session URL", EIO);
  }
  ~GcsUpload() override { Abort(); }

  void WritePart(std::string_view data) override { Send(data, /*last=*/false); }

  void Finish(std::string_view last_part) override {
    Send(last_part, /*last=*/true);
    finished_ = true;
  }

  void Abort() noexcept override {
    if (finished_) return;
    finished_ = true;
    try {
      HttpRequest request;
      request.method = "DELETE";
      request.url = session_;
      store_.transport().http().Send(request);
    } catch (...) {
      // Best effort: an abandoned session expires by itself after a week and is never visible.
    }
  }

 private:
  void Send(std::string_view data, bool last) {
    const std::string what = "upload " + GcsStore::Url(bucket_, key_);
    HttpResponse response = store_.transport().retry().Run(what, [&](int attempt) {
      uint64_t start = offset_;
      if (attempt > 0) start = std::max(start, PersistedUpTo());  // resume where the session stopped
      const std::string_view rest = data.substr(std::min<uint64_t>(start - offset_, data.size()));
      const std::string total = last ? std::to_string(offset_ + data.size()) : "*";
      HttpRequest request;
      request.method = "PUT";
      request.url = session_;
      request.body = rest;
      request.headers.emplace_back("Content-Range", rest.empty()
                                                        ? "bytes */" + total
                                                        : "bytes " + std::to_string(start) + "-" +
                                                              std::to_string(start + rest.size() - 1) + "/" + total);
      return store_.transport().http().Send(request);
    });
    if (!(last ? IsSuccess(response) : response.status == 308 || IsSuccess(response))) {
      ThrowHttpError(what, response);
    }
    offset_ += data.size();
  }

  // How many bytes the session holds: "Range: bytes=0-N" on a 308 reply to an empty PUT.
  uint64_t PersistedUpTo() {
    HttpRequest request;
    request.method = "PUT";
    request.url = session_;
    request.headers.emplace_back("Content-Range", "bytes */*");
    HttpResponse response = store_.transport().http().Send(request);
    if (response.status != 308) return offset_;  // unknown (or already complete): send the part again
    const std::string range = response.Header("range");
    const auto dash = range.find('-');
    return dash == std::string::npos ? 0 : std::stoull(range.substr(dash + 1)) + 1;
  }

  GcsStore& store_;
  std::string bucket_, key_, session_;
  uint64_t offset_ = 0;  // bytes sent in earlier parts
  bool finished_ = false;
};

std::unique_ptr<Upload> GcsStore::StartUpload(const std::string& bucket, const std::string& key) {
  return std::make_unique<GcsUpload>(*this, bucket, key);
}

}  // namespace

std::unique_ptr<ObjectStore> NewGcsStore(ObjectStoreOptions options) {
  return std::make_unique<GcsStore>(std::move(options));
}

}  // namespace cairn::io::objstore
