// The S3 driver: path-style requests to a custom endpoint (moto, MinIO, ...) or virtual-hosted ones to AWS, signed
// with Signature V4; multipart uploads for files larger than a part, ListObjectsV2, DeleteObjects in batches of
// 1,000, CopyObject (UploadPartCopy in parts for objects over CopyObject's 5 GiB).
#include <chrono>
#include <deque>
#include <future>

#include "cairn/error.h"
#include "core/hex.h"
#include "core/sha256.h"
#include "io/objstore/aws_config.h"
#include "io/objstore/crypto.h"
#include "io/objstore/object_store.h"
#include "io/objstore/sigv4.h"
#include "io/objstore/transport.h"
#include "io/objstore/xml.h"

namespace cairn::io::objstore {
namespace {

using Query = std::vector<std::pair<std::string, std::string>>;

struct S3Call {
  S3Call(std::string method, std::string bucket, std::string key, Query query = {},
         std::vector<std::pair<std::string, std::string>> headers = {}, std::string_view body = {},
         bool sign_body = false)
      : method(std::move(method)),
        bucket(std::move(bucket)),
        key(std::move(key)),
        query(std::move(query)),
        headers(std::move(headers)),
        body(body),
        sign_body(sign_body) {}

  std::string method;
  std::string bucket;
  std::string key;  // may be empty (bucket-level calls)
  Query query;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string_view body;
  bool sign_body = false;  // hash the body into the signature (small XML bodies)
  char* sink = nullptr;
  size_t sink_size = 0;
};

class S3Store final : public ObjectStore {
 public:
  S3Store(ObjectStoreOptions options, S3CopyLimits copy_limits)
      : options_(std::move(options)),
        copy_limits_(copy_limits),
        config_(ResolveAwsConfig(options_)),
        transport_(options_) {
    const auto scheme_end = config_.endpoint.find("://");
    const std::string rest =
        scheme_end == std::string::npos ? config_.endpoint : config_.endpoint.substr(scheme_end + 3);
    scheme_ = scheme_end == std::string::npos ? "https" : config_.endpoint.substr(0, scheme_end);
    host_ = rest.substr(0, rest.find('/'));
  }

  std::string_view scheme() const override { return "s3"; }
  const ObjectStoreOptions& options() const override { return options_; }

  void Put(const std::string& bucket, const std::string& key, std::string_view data) override {
    Require(Call({"PUT", bucket, key, {}, {}, data}), "PUT", bucket, key);
  }

  std::optional<uint64_t> Head(const std::string& bucket, const std::string& key) override {
    HttpResponse response = Call({"HEAD", bucket, key});
    if (response.status == 404) return std::nullopt;
    Require(response, "HEAD", bucket, key);
    return std::stoull(response.Header("content-length").empty() ? "0" : response.Header("content-length"));
  }

  void Get(const std::string& bucket, const std::string& key, uint64_t offset, size_t length, char* out) override {
    if (length == 0) return;
    S3Call call{"GET", bucket, key};
    call.headers.push_back(RangeHeader(offset, length));
    call.sink = out;
    call.sink_size = length;
    HttpResponse response = Call(call);
    Require(response, "GET", bucket, key);
    RequireWholeRange(Url(bucket, key), response, offset, length);
  }

  ListResult List(const std::string& bucket, const std::string& prefix, bool delimited, int max_keys) override {
    return ListInPages(max_keys, options_.list_page_size, [&](int size, const std::string& token, ListResult& result) {
      S3Call call{"GET", bucket, ""};
      call.query = {{"list-type", "2"}, {"prefix", prefix}};
      if (delimited) call.query.emplace_back("delimiter", "/");
      call.query.emplace_back("max-keys", std::to_string(size));
      if (!token.empty()) call.query.emplace_back("continuation-token", token);
      HttpResponse response = Call(call);
      Require(response, "LIST", bucket, prefix);
      for (std::string_view contents : XmlElements(response.body, "Contents")) {
        result.objects.push_back({XmlText(contents, "Key"), std::stoull("0" + XmlText(contents, "Size"))});
      }
      for (std::string_view common : XmlElements(response.body, "CommonPrefixes")) {
        result.prefixes.push_back(XmlText(common, "Prefix"));
      }
      return XmlText(response.body, "IsTruncated") == "true" ? XmlText(response.body, "NextContinuationToken") : "";
    });
  }

  void Delete(const std::string& bucket, const std::vector<std::string>& keys) override {
    constexpr size_t kBatch = 1000;  // DeleteObjects' limit
    for (size_t begin = 0; begin < keys.size(); begin += kBatch) {
      std::string body = "<Delete><Quiet>true</Quiet>";
      for (size_t i = begin; i < std::min(keys.size(), begin + kBatch); ++i) {
        body += "<Object><Key>" + XmlEscape(keys[i]) + "</Key></Object>";
      }
      body += "</Delete>";
      S3Call call{"POST", bucket, "", {{"delete", ""}}, {{"Content-MD5", Base64Encode(Md5(body))}}, body, true};
      call.headers.emplace_back("Content-Type", "application/xml");
      HttpResponse response = Call(call);
      Require(response, "DELETE (batch)", bucket, keys[begin]);
      for (std::string_view error : XmlElements(response.body, "Error")) {
        if (XmlText(error, "Code") == "NoSuchKey") continue;
        throw IoError(Url(bucket, XmlText(error, "Key")) + ": delete failed: " + XmlText(error, "Code") + " " +
                          XmlText(error, "Message"),
                      EIO);
      }
    }
  }

  void Copy(const std::string& from_bucket, const std::string& from, const std::string& to_bucket,
            const std::string& to) override {
    const std::string source = "/" + from_bucket + "/" + UrlEncode(from, /*keep_slash=*/true);
    // The size decides between one CopyObject and a copy in parts; a missing source is a NotFoundError here.
    const auto size = Head(from_bucket, from);
    if (!size) throw NotFoundError("COPY " + Url(from_bucket, from) + ": no such object");
    if (*size > copy_limits_.max_single_copy_bytes) return CopyInParts(source, *size, to_bucket, to);
    S3Call call{"PUT", to_bucket, to};
    call.headers.emplace_back("x-amz-copy-source", source);
    HttpResponse response = Call(call);
    RequireNoErrorDocument(response, "COPY", from_bucket, from);
  }

  std::unique_ptr<Upload> StartUpload(const std::string& bucket, const std::string& key) override;

  ObjectStoreStats Stats() const override { return transport_.Stats(); }

  // A multipart upload whose parts are UploadPartCopy ranges of `source` ("/bucket/key", encoded), in parallel.
  void CopyInParts(const std::string& source, uint64_t size, const std::string& bucket, const std::string& key);

  // Sends one call under the retry policy, signed afresh for each attempt.
  HttpResponse Call(const S3Call& call) {
    const std::string encoded_key = UrlEncode(call.key, /*keep_slash=*/true);
    const std::string path = !config_.path_style ? "/" + encoded_key
                             : call.key.empty()  ? "/" + call.bucket
                                                 : "/" + call.bucket + "/" + encoded_key;
    const std::string host = config_.path_style ? host_ : call.bucket + "." + host_;
    const std::string payload_hash = call.sign_body ? HexEncode(Sha256(call.body)) : kUnsignedPayload;
    const std::string query = CanonicalQuery(call.query);
    const std::string url = scheme_ + "://" + host + path + (query.empty() ? "" : "?" + query);
    return transport_.Send(call.method + " " + Url(call.bucket, call.key), [&] {
      HttpRequest request;
      request.method = call.method;
      request.url = url;
      request.headers = call.headers;
      request.body = call.body;
      request.sink = call.sink;
      request.sink_size = call.sink_size;
      if (config_.credentials) {
        SignV4(request, SigV4Input{host, path, call.query, payload_hash, config_.region}, *config_.credentials,
               std::chrono::system_clock::now());
      }
      return request;
    });
  }

  static std::string Url(const std::string& bucket, const std::string& key) { return ObjectUrl("s3", bucket, key); }
  static void Require(const HttpResponse& response, const char* what, const std::string& bucket,
                      const std::string& key) { RequireSuccess(response, what, "s3", bucket, key); }

  // CopyObject and CompleteMultipartUpload may answer 200 and report the failure in the body.
  static void RequireNoErrorDocument(const HttpResponse& response, const char* what, const std::string& bucket,
                                     const std::string& key) {
    Require(response, what, bucket, key);
    if (response.body.find("<Error>") != std::string::npos) {
      throw IoError(std::string(what) + " " + Url(bucket, key) + ": " + XmlText(response.body, "Code") + " " +
                        XmlText(response.body, "Message"),
                    EIO);
    }
  }

 private:
  ObjectStoreOptions options_;
  S3CopyLimits copy_limits_;
  AwsConfig config_;
  Transport transport_;
  std::string scheme_;
  std::string host_;
};

// CreateMultipartUpload, UploadPart for each part, CompleteMultipartUpload; AbortMultipartUpload on failure. Parts
// go up in parallel, at most kPartsInFlight per file, each from a copy of its own (the caller's buffer may change
// once WritePart returns): memory is bounded by kPartsInFlight parts per file being written.
class S3Upload final : public Upload {
 public:
  static constexpr size_t kPartsInFlight = 4;

  S3Upload(S3Store& store, std::string bucket, std::string key)
      : store_(store), bucket_(std::move(bucket)), key_(std::move(key)) {
    HttpResponse response = store_.Call({"POST", bucket_, key_, {{"uploads", ""}}});
    S3Store::Require(response, "CreateMultipartUpload", bucket_, key_);
    upload_id_ = XmlText(response.body, "UploadId");
    if (upload_id_.empty())
      throw IoError("CreateMultipartUpload " + S3Store::Url(bucket_, key_) + ": no UploadId", EIO);
  }
  ~S3Upload() override { Abort(); }

  void WritePart(std::string_view data) override {
    if (in_flight_.size() >= kPartsInFlight) CollectOldest();
    const int number = static_cast<int>(etags_.size() + in_flight_.size()) + 1;
    auto part = std::make_shared<std::string>(data);
    in_flight_.push_back(std::async(std::launch::async, [this, number, part] {
      HttpResponse response = store_.Call(
          {"PUT", bucket_, key_, {{"partNumber", std::to_string(number)}, {"uploadId", upload_id_}}, {}, *part});
      S3Store::Require(response, "UploadPart", bucket_, key_);
      return response.Header("etag");
    }));
  }

  // The next part is the bytes [first, last] of `source` ("/bucket/key", encoded), copied by the server.
  void CopyPart(const std::string& source, uint64_t first, uint64_t last) {
    if (in_flight_.size() >= kPartsInFlight) CollectOldest();
    const int number = static_cast<int>(etags_.size() + in_flight_.size()) + 1;
    in_flight_.push_back(std::async(std::launch::async, [this, number, source, first, last] {
      S3Call call{"PUT", bucket_, key_, {{"partNumber", std::to_string(number)}, {"uploadId", upload_id_}}};
      call.headers.emplace_back("x-amz-copy-source", source);
      call.headers.emplace_back("x-amz-copy-source-range",
                                "bytes=" + std::to_string(first) + "-" + std::to_string(last));
      HttpResponse response = store_.Call(call);
      S3Store::RequireNoErrorDocument(response, "UploadPartCopy", bucket_, key_);
      std::string etag = XmlText(response.body, "ETag");  // in the CopyPartResult document, not a header
      if (etag.empty()) throw IoError("UploadPartCopy " + S3Store::Url(bucket_, key_) + ": no ETag", EIO);
      return etag;
    }));
  }

  void Finish(std::string_view last_part) override {
    if (!last_part.empty() || (etags_.empty() && in_flight_.empty())) WritePart(last_part);
    while (!in_flight_.empty()) CollectOldest();
    std::string body = "<CompleteMultipartUpload>";
    for (size_t i = 0; i < etags_.size(); ++i) {
      body += "<Part><PartNumber>" + std::to_string(i + 1) + "</PartNumber><ETag>" + XmlEscape(etags_[i]) +
              "</ETag></Part>";
    }
    body += "</CompleteMultipartUpload>";
    S3Call call{"POST", bucket_, key_, {{"uploadId", upload_id_}}, {{"Content-Type", "application/xml"}}, body, true};
    S3Store::RequireNoErrorDocument(store_.Call(call), "CompleteMultipartUpload", bucket_, key_);
    finished_ = true;
  }

  void Abort() noexcept override {
    if (finished_) return;
    finished_ = true;
    for (auto& part : in_flight_) {
      try {
        part.get();  // the parts in flight end before the upload is aborted under them
      } catch (...) {
      }
    }
    in_flight_.clear();
    try {
      store_.Call({"DELETE", bucket_, key_, {{"uploadId", upload_id_}}});
    } catch (...) {
      // Best effort: an abandoned multipart upload is invisible, and a bucket lifecycle rule removes it.
    }
  }

 private:
  void CollectOldest() {
    auto part = std::move(in_flight_.front());
    in_flight_.pop_front();
    etags_.push_back(part.get());  // rethrows the part's failure
  }

  S3Store& store_;
  std::string bucket_, key_, upload_id_;
  std::vector<std::string> etags_;                  // of the parts completed, in order
  std::deque<std::future<std::string>> in_flight_;  // the parts after those, in order
  bool finished_ = false;
};

std::unique_ptr<Upload> S3Store::StartUpload(const std::string& bucket, const std::string& key) {
  return std::make_unique<S3Upload>(*this, bucket, key);
}

void S3Store::CopyInParts(const std::string& source, uint64_t size, const std::string& bucket,
                          const std::string& key) {
  constexpr uint64_t kMaxParts = 10'000;                 // S3's limit on the parts of one upload
  constexpr uint64_t kMaxPartBytes = uint64_t{5} << 30;  // and on one part
  uint64_t part = std::max(copy_limits_.copy_part_bytes, (size + kMaxParts - 1) / kMaxParts);
  if (part > kMaxPartBytes) {
    throw InvalidArgumentError("COPY to " + Url(bucket, key) + ": an object of " + std::to_string(size) +
                               " bytes is larger than S3 can copy (10,000 parts of 5 GiB)");
  }
  S3Upload upload(*this, bucket, key);  // aborted by its destructor if a part fails
  for (uint64_t first = 0; first < size; first += part) {
    upload.CopyPart(source, first, std::min(size, first + part) - 1);
  }
  upload.Finish({});
}

}  // namespace

std::unique_ptr<ObjectStore> NewS3Store(ObjectStoreOptions options, S3CopyLimits copy_limits) {
  return std::make_unique<S3Store>(std::move(options), copy_limits);
}

}  // namespace cairn::io::objstore
