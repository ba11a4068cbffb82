// The digests and signatures only the drivers need, from OpenSSL: MD5 (S3's Content-MD5 on batch deletes),
// RSA-SHA-256 (a GCS service account's token request), and base64. SHA-256 and its HMAC are core/sha256.h,
// hexadecimal core/hex.h.
#pragma once

#include <string>
#include <string_view>

namespace cairn::io::objstore {

std::string Md5(std::string_view data);                                   // raw 16 bytes
std::string Base64Encode(std::string_view bytes, bool url_safe = false);  // url_safe: no padding, '-' and '_'
// Signs `data` with the PEM private key (PKCS#8, as in a service-account JSON file); InvalidArgumentError when the
// key does not parse.
std::string RsaSha256Sign(std::string_view pem_private_key, std::string_view data);

}  // namespace cairn::io::objstore
