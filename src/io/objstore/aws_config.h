// Where S3 credentials, region and endpoint come from, in the order the AWS CLI and boto3 look: explicit options,
// then AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, then the profile (AWS_PROFILE, else
// "default") in ~/.aws/credentials and ~/.aws/config (AWS_SHARED_CREDENTIALS_FILE, AWS_CONFIG_FILE).
#pragma once

#include <map>
#include <optional>
#include <string>

#include "cairn/object_store.h"

namespace cairn::io::objstore {

struct AwsCredentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // temporary credentials (STS) only
};

struct AwsConfig {
  std::optional<AwsCredentials> credentials;  // nullopt: anonymous requests
  std::string region;
  std::string endpoint;    // base URL without a trailing '/'
  bool path_style = true;  // bucket in the path (custom endpoints) rather than in the host name (AWS itself)
};

AwsConfig ResolveAwsConfig(const ObjectStoreOptions& options);

// The sections of an INI file as the AWS tools read it: "[name]" headers, "key = value" lines, '#' and ';'
// comments. Empty when the file cannot be read.
std::map<std::string, std::map<std::string, std::string>> ReadIniFile(const std::string& path);

}  // namespace cairn::io::objstore
