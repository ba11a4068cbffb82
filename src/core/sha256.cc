#include "core/sha256.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cerrno>

#include "cairn/error.h"

namespace cairn {

std::string Sha256(std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(data.data(), data.size(), out, &size, EVP_sha256(), nullptr) != 1) {
    throw IoError("SHA-256 failed (EVP_Digest)", EIO);
  }
  return std::string(reinterpret_cast<char*>(out), size);
}

std::string HmacSha256(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
            data.size(), out, &size)) {
    throw IoError("HMAC-SHA-256 failed", EIO);
  }
  return std::string(reinterpret_cast<char*>(out), size);
}

}  // namespace cairn
