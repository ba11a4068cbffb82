#include "io/objstore/sigv4.h"

#include <algorithm>
#include <cctype>
#include <ctime>

#include "core/hex.h"
#include "core/sha256.h"
#include "io/objstore/crypto.h"

namespace cairn::io::objstore {

std::string CanonicalQuery(std::vector<std::pair<std::string, std::string>> query) {
  for (auto& [name, value] : query) {
    name = UrlEncode(name);
    value = UrlEncode(value);
  }
  std::sort(query.begin(), query.end());
  std::string out;
  for (const auto& [name, value] : query) {
    if (!out.empty()) out += '&';
    out += name + "=" + value;
  }
  return out;
}

void SignV4(HttpRequest& request, const SigV4Input& input, const AwsCredentials& credentials,
            std::chrono::system_clock::time_point now) {
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm utc{};
  gmtime_r(&t, &utc);
  char stamp[32], day[16];
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &utc);
  std::strftime(day, sizeof day, "%Y%m%d", &utc);

  request.headers.emplace_back("Host", input.host);
  request.headers.emplace_back("x-amz-date", stamp);
  request.headers.emplace_back("x-amz-content-sha256", input.payload_hash);
  if (!credentials.session_token.empty())
    request.headers.emplace_back("x-amz-security-token", credentials.session_token);

  std::vector<std::pair<std::string, std::string>> canonical;
  for (const auto& [name, value] : request.headers) {
    std::string lower = name;
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
    const auto first = value.find_first_not_of(' ');
    const auto last = value.find_last_not_of(' ');
    canonical.emplace_back(lower, first == std::string::npos ? "" : value.substr(first, last - first + 1));
  }
  std::sort(canonical.begin(), canonical.end());
  std::string headers, signed_headers;
  for (const auto& [name, value] : canonical) {
    headers += name + ":" + value + "\n";
    if (!signed_headers.empty()) signed_headers += ';';
    signed_headers += name;
  }
  const std::string canonical_request = request.method + "\n" + input.canonical_uri + "\n" +
                                        CanonicalQuery(input.query) + "\n" + headers + "\n" + signed_headers + "\n" +
                                        input.payload_hash;
  const std::string scope = std::string(day) + "/" + input.region + "/" + input.service + "/aws4_request";
  const std::string string_to_sign =
      "AWS4-HMAC-SHA256\n" + std::string(stamp) + "\n" + scope + "\n" + HexEncode(Sha256(canonical_request));
  std::string key = HmacSha256("AWS4" + credentials.secret_access_key, day);
  key = HmacSha256(key, input.region);
  key = HmacSha256(key, input.service);
  key = HmacSha256(key, "aws4_request");
  request.headers.emplace_back("Authorization", "AWS4-HMAC-SHA256 Credential=" + credentials.access_key_id + "/" +
                                                    scope + ", SignedHeaders=" + signed_headers +
                                                    ", Signature=" + HexEncode(HmacSha256(key, string_to_sign)));
}

}  // namespace cairn::io::objstore
