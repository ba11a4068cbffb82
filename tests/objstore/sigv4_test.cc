// AWS Signature V4 against the worked examples of the S3 API reference ("Signature Calculations for the
// Authorization Header: Transferring Payload in a Single Chunk"): moto does not check signatures, so these
// known answers are what keeps the canonicalisation honest.
#include "io/objstore/sigv4.h"

#include <gtest/gtest.h>

#include <chrono>

#include "core/hex.h"
#include "core/sha256.h"
#include "io/objstore/crypto.h"

namespace cairn::io::objstore {
namespace {

constexpr const char* kEmptySha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

std::chrono::system_clock::time_point May24th2013() {
  return std::chrono::system_clock::time_point(std::chrono::seconds(1369353600));  // 2013-05-24T00:00:00Z
}

std::string Authorization(const HttpRequest& request) {
  for (const auto& [name, value] : request.headers) {
    if (name == "Authorization") return value;
  }
  return "";
}

const AwsCredentials kExampleKeys{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""};

TEST(SigV4, GetObjectExample) {
  HttpRequest request;
  request.method = "GET";
  request.headers.emplace_back("Range", "bytes=0-9");
  SignV4(request, SigV4Input{"examplebucket.s3.amazonaws.com", "/test.txt", {}, kEmptySha256, "us-east-1"},
         kExampleKeys, May24th2013());
  EXPECT_EQ(Authorization(request),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

TEST(SigV4, ListObjectsExample) {
  HttpRequest request;
  request.method = "GET";
  SignV4(request,
         SigV4Input{"examplebucket.s3.amazonaws.com", "/", {{"prefix", "J"}, {"max-keys", "2"}}, kEmptySha256,
                    "us-east-1"},
         kExampleKeys, May24th2013());
  EXPECT_EQ(Authorization(request),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            "SignedHeaders=host;x-amz-content-sha256;x-amz-date, "
            "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

TEST(SigV4, QueryIsSortedAndEncoded) {
  EXPECT_EQ(CanonicalQuery({{"prefix", "a b/c"}, {"list-type", "2"}, {"delete", ""}}),
            "delete=&list-type=2&prefix=a%20b%2Fc");
}

TEST(Crypto, KnownDigests) {
  EXPECT_EQ(HexEncode(Sha256("")), kEmptySha256);
  EXPECT_EQ(Base64Encode(Md5("")), "1B2M2Y8AsgTpgAmY7PhCfg==");
  EXPECT_EQ(Base64Encode("\xfb\xff", /*url_safe=*/true), "-_8");
}

}  // namespace
}  // namespace cairn::io::objstore
