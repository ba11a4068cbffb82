// What the S3 and GCS drivers share, written once: their options and Transport (HTTP client, retry policy,
// statistics), how an object's URL is spelled in messages and a reply is checked, and how an upload starts.
// `Store` is the driver (it declares `static constexpr const char* kScheme`), `StoreUpload` its Upload, built from
// (Store&, bucket, key).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "io/objstore/object_store.h"
#include "io/objstore/transport.h"

namespace cairn::io::objstore {

template <typename Store, typename StoreUpload>
class ObjectStoreBase : public ObjectStore {
 public:
  explicit ObjectStoreBase(ObjectStoreOptions options) : options_(std::move(options)), transport_(options_) {}

  std::string_view scheme() const override { return Store::kScheme; }
  const ObjectStoreOptions& options() const override { return options_; }
  ObjectStoreStats Stats() const override { return transport_.Stats(); }
  std::unique_ptr<Upload> StartUpload(const std::string& bucket, const std::string& key) override {
    return std::make_unique<StoreUpload>(static_cast<Store&>(*this), bucket, key);
  }

  // "s3://bucket/key", for messages.
  static std::string Url(const std::string& bucket, const std::string& key) {
    return objstore::ObjectUrl(Store::kScheme, bucket, key);
  }
  // An IoError (or NotFoundError) naming the object unless the reply is a success.
  static void Require(const HttpResponse& response, const char* what, const std::string& bucket,
                      const std::string& key) {
    RequireSuccess(response, what, Store::kScheme, bucket, key);
  }

  Transport& transport() { return transport_; }

 protected:
  ObjectStoreOptions options_;
  Transport transport_;
};

}  // namespace cairn::io::objstore
