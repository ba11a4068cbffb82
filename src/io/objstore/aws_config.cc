#include "io/objstore/aws_config.h"

#include <cstdlib>
#include <fstream>

#include "cairn/error.h"

namespace cairn::io::objstore {
namespace {

std::string Env(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

std::string Trim(std::string s) {
  const auto first = s.find_first_not_of(" \t\r");
  if (first == std::string::npos) return "";
  return s.substr(first, s.find_last_not_of(" \t\r") - first + 1);
}

std::string HomeFile(const char* env_name, const char* relative) {
  if (std::string path = Env(env_name); !path.empty()) return path;
  const std::string home = Env("HOME");
  return home.empty() ? "" : home + "/" + relative;
}

}  // namespace

std::map<std::string, std::map<std::string, std::string>> ReadIniFile(const std::string& path) {
  // Read with a plain stream rather than the FileSystem seam: this is the user's configuration, not checkpoint data.
  std::map<std::string, std::map<std::string, std::string>> sections;
  if (path.empty()) return sections;
  std::ifstream in(path);
  std::string line, section;
  while (std::getline(in, line)) {
    line = Trim(line);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[' && line.back() == ']') {
      section = Trim(line.substr(1, line.size() - 2));
      continue;
    }
    const auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    sections[section][Trim(line.substr(0, eq))] = Trim(line.substr(eq + 1));
  }
  return sections;
}

AwsConfig ResolveAwsConfig(const ObjectStoreOptions& options) {
  AwsConfig config;
  const std::string profile = !options.profile.empty()      ? options.profile
                              : !Env("AWS_PROFILE").empty() ? Env("AWS_PROFILE")
                                                            : "default";
  auto credentials_file = ReadIniFile(HomeFile("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials"));
  auto config_file = ReadIniFile(HomeFile("AWS_CONFIG_FILE", ".aws/config"));
  // ~/.aws/config names its sections "[profile x]", except "[default]".
  const auto& profile_config = config_file[profile == "default" ? "default" : "profile " + profile];
  auto from_profile = [&](const std::string& key) {
    auto& creds = credentials_file[profile];
    if (auto it = creds.find(key); it != creds.end()) return it->second;
    if (auto it = profile_config.find(key); it != profile_config.end()) return it->second;
    return std::string();
  };

  if (!options.anonymous) {
    if (!Env("AWS_ACCESS_KEY_ID").empty()) {
      config.credentials =
          AwsCredentials{Env("AWS_ACCESS_KEY_ID"), Env("AWS_SECRET_ACCESS_KEY"), Env("AWS_SESSION_TOKEN")};
    } else if (!from_profile("aws_access_key_id").empty()) {
      config.credentials = AwsCredentials{from_profile("aws_access_key_id"), from_profile("aws_secret_access_key"),
                                          from_profile("aws_session_token")};
    } else {
      throw InvalidArgumentError("no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or profile '" +
                                 profile + "' in ~/.aws/credentials, or ask for anonymous access");
    }
  }

  config.region = !options.region.empty()              ? options.region
                  : !Env("AWS_REGION").empty()         ? Env("AWS_REGION")
                  : !Env("AWS_DEFAULT_REGION").empty() ? Env("AWS_DEFAULT_REGION")
                  : !from_profile("region").empty()    ? from_profile("region")
                                                       : "us-east-1";
  config.endpoint = !options.endpoint.empty()               ? options.endpoint
                    : !Env("AWS_ENDPOINT_URL_S3").empty()   ? Env("AWS_ENDPOINT_URL_S3")
                    : !Env("AWS_ENDPOINT_URL").empty()      ? Env("AWS_ENDPOINT_URL")
                    : !from_profile("endpoint_url").empty() ? from_profile("endpoint_url")
                                                            : "";
  if (config.endpoint.empty()) {
    config.endpoint = "https://s3." + config.region + ".amazonaws.com";
    config.path_style = false;
  }
  while (!config.endpoint.empty() && config.endpoint.back() == '/') config.endpoint.pop_back();
  return config;
}

}  // namespace cairn::io::objstore
