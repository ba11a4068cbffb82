// OAuth2 access tokens for GCS, found as Google's client libraries find them: anonymous for an emulator
// (STORAGE_EMULATOR_HOST) or when asked; a key file (GOOGLE_APPLICATION_CREDENTIALS or the option) holding a
// service account, whose signed JWT is exchanged for a token, or an authorized user (gcloud's application-default
// credentials), whose refresh token is; else the metadata server of the VM the job runs on. Tokens are cached and
// renewed a minute before they expire.
#pragma once

#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "cairn/object_store.h"
#include "io/objstore/transport.h"

namespace cairn::io::objstore {

class GcsAuth {
 public:
  GcsAuth(const ObjectStoreOptions& options, Transport& transport);

  // "Bearer <token>", or nullopt for anonymous requests.
  std::optional<std::string> AuthorizationHeader();

 private:
  enum class Kind { kAnonymous, kServiceAccount, kAuthorizedUser, kMetadataServer };
  void Refresh();

  Transport& transport_;
  Kind kind_ = Kind::kAnonymous;
  nlohmann::json key_;  // the key file's contents
  std::mutex mu_;
  std::string token_;
  std::chrono::steady_clock::time_point expiry_{};
};

}  // namespace cairn::io::objstore
