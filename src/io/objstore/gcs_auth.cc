#include "io/objstore/gcs_auth.h"

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "cairn/error.h"
#include "io/objstore/crypto.h"

namespace cairn::io::objstore {
namespace {

constexpr const char* kScope = "https://www.googleapis.com/auth/devstorage.read_write";

std::string Env(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

std::string FormEncode(std::initializer_list<std::pair<std::string, std::string>> fields) {
  std::string out;
  for (const auto& [name, value] : fields) out += (out.empty() ? "" : "&") + UrlEncode(name) + "=" + UrlEncode(value);
  return out;
}

}  // namespace

GcsAuth::GcsAuth(const ObjectStoreOptions& options, Transport& transport) : transport_(transport) {
  const std::string key_file =
      !options.gcs_credentials_file.empty() ? options.gcs_credentials_file : Env("GOOGLE_APPLICATION_CREDENTIALS");
  if (options.anonymous || (options.gcs_credentials_file.empty() && !Env("STORAGE_EMULATOR_HOST").empty())) {
    kind_ = Kind::kAnonymous;
    return;
  }
  if (key_file.empty()) {
    kind_ = Kind::kMetadataServer;
    return;
  }
  // The user's configuration, read directly rather than through the FileSystem seam (it is not checkpoint data).
  std::ifstream in(key_file);
  if (!in) throw NotFoundError("GCS credentials file " + key_file + ": cannot be read");
  std::stringstream text;
  text << in.rdbuf();
  try {
    key_ = nlohmann::json::parse(text.str());
  } catch (const nlohmann::json::exception& e) {
    throw InvalidArgumentError("GCS credentials file " + key_file + " is not JSON: " + e.what());
  }
  const std::string type = key_.value("type", "");
  if (type == "service_account")
    kind_ = Kind::kServiceAccount;
  else if (type == "authorized_user")
    kind_ = Kind::kAuthorizedUser;
  else
    throw InvalidArgumentError("GCS credentials file " + key_file + ": unsupported type '" + type + "'");
}

std::optional<std::string> GcsAuth::AuthorizationHeader() {
  if (kind_ == Kind::kAnonymous) return std::nullopt;
  std::lock_guard lock(mu_);
  if (token_.empty() || std::chrono::steady_clock::now() + std::chrono::seconds(60) >= expiry_) Refresh();
  return "Bearer " + token_;
}

void GcsAuth::Refresh() {
  HttpRequest request;
  std::string body;
  if (kind_ == Kind::kMetadataServer) {
    const std::string host = Env("GCE_METADATA_HOST").empty() ? "metadata.google.internal" : Env("GCE_METADATA_HOST");
    request.url = "http://" + host + "/computeMetadata/v1/instance/service-accounts/default/token";
    request.headers.emplace_back("Metadata-Flavor", "Google");
  } else if (kind_ == Kind::kServiceAccount) {
    const auto now =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    const std::string token_uri = key_.value("token_uri", "https://oauth2.googleapis.com/token");
    const nlohmann::json claims = {{"iss", key_.value("client_email", "")},
                                   {"scope", kScope},
                                   {"aud", token_uri},
                                   {"iat", now},
                                   {"exp", now + 3600}};
    const std::string unsigned_jwt =
        Base64Encode(R"({"alg":"RS256","typ":"JWT"})", true) + "." + Base64Encode(claims.dump(), true);
    const std::string jwt =
        unsigned_jwt + "." + Base64Encode(RsaSha256Sign(key_.value("private_key", ""), unsigned_jwt), true);
    body = FormEncode({{"grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"}, {"assertion", jwt}});
    request.method = "POST";
    request.url = token_uri;
  } else {
    body = FormEncode({{"grant_type", "refresh_token"},
                       {"client_id", key_.value("client_id", "")},
                       {"client_secret", key_.value("client_secret", "")},
                       {"refresh_token", key_.value("refresh_token", "")}});
    request.method = "POST";
    request.url = "https://oauth2.googleapis.com/token";
  }
  if (!body.empty()) request.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
  request.body = body;
  HttpResponse response;
  try {
    response = transport_.Send("GCS access token from " + request.url, request);
  } catch (const IoError& e) {
    if (kind_ != Kind::kMetadataServer) throw;
    throw IoError(std::string(e.what()) +
                      " (no GCS credentials found: set GOOGLE_APPLICATION_CREDENTIALS to a key file, or "
                      "STORAGE_EMULATOR_HOST for an emulator, or run where the metadata server answers)",
                  EACCES);
  }
  if (!IsSuccess(response)) ThrowHttpError("GCS access token from " + request.url, response);
  try {
    const auto reply = nlohmann::json::parse(response.body);
    token_ = reply.at("access_token").get<std::string>();
    expiry_ = std::chrono::steady_clock::now() + std::chrono::seconds(reply.value("expires_in", 3600));
  } catch (const nlohmann::json::exception& e) {
    throw IoError("GCS access token from " + request.url + ": unexpected reply: " + e.what(), EIO);
  }
}

}  // namespace cairn::io::objstore
