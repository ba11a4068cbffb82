// AWS Signature Version 4 for S3 requests (docs.aws.amazon.com "Signature Version 4 signing process").
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "io/objstore/aws_config.h"
#include "io/objstore/http_client.h"

namespace cairn::io::objstore {

// Payloads are not hashed: S3 accepts this for every request, and the transfer's length and TCP's checksum are
// what a hash would add over loopback or TLS. (Batch deletes, whose body S3 requires a Content-MD5 for, are small
// and signed with their real hash.)
inline constexpr const char* kUnsignedPayload = "UNSIGNED-PAYLOAD";

struct SigV4Input {
  std::string host;           // as sent in the Host header (with ":port" when not the default)
  std::string canonical_uri;  // the request path, already percent-encoded as sent
  std::vector<std::pair<std::string, std::string>> query;  // raw (not yet encoded) names and values
  std::string payload_hash = kUnsignedPayload;
  std::string region;
  std::string service = "s3";
};

// The query string as it must be sent: names sorted, names and values percent-encoded.
std::string CanonicalQuery(std::vector<std::pair<std::string, std::string>> query);

// Adds Host, x-amz-date, x-amz-content-sha256, x-amz-security-token (with a session token) and Authorization to
// `request`, signing every header already in it.
void SignV4(HttpRequest& request, const SigV4Input& input, const AwsCredentials& credentials,
            std::chrono::system_clock::time_point now);

}  // namespace cairn::io::objstore
