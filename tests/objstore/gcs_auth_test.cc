// GCS credentials from a service account's key file: cairn signs a JWT with the key (RS256) and exchanges it for a
// token at the key's token_uri, here the tests' own token endpoint (servers.py token), which checks the signature
// and claims; the token then goes with every request to fake-gcs-server.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cairn/error.h"
#include "cairn/object_store.h"
#include "object_store_env.h"
#include "test_util.h"

namespace cairn {
namespace {

nlohmann::json TokenStats(const testing::ServerProcess& token) {
  io::objstore::HttpClient http(io::objstore::HttpOptions{});
  io::objstore::HttpRequest request;
  request.url = token.url() + "/stats";
  return nlohmann::json::parse(http.Send(request).body);
}

TEST(GcsServiceAccount, TokensComeFromASignedJwt) {
  testing::TempDir dir;
  const std::string key_file = (dir / "key.json").string();
  testing::ServerProcess token("token", {}, /*proxy=*/false, {"--key-file", key_file});
  ObjectStoreOptions options = testing::Server("gcs").Options();
  options.gcs_credentials_file = key_file;
  auto fs = NewGcsFileSystem(options);
  const std::filesystem::path root = testing::UniqueUrl("gcs");
  fs->WriteFile(root / "a", "hello");
  EXPECT_EQ(fs->ReadFile(root / "a"), "hello");
  const auto stats = TokenStats(token);
  EXPECT_EQ(stats.at("ok"), 1) << "one token, cached for the following requests";
  EXPECT_EQ(stats.at("bad"), 0);
}

TEST(GcsServiceAccount, AnUnreadableKeyFileIsAClearError) {
  testing::TempDir dir;
  ObjectStoreOptions options = testing::Server("gcs").Options();
  options.gcs_credentials_file = (dir / "missing.json").string();
  EXPECT_THROW(NewGcsFileSystem(options), NotFoundError);
  testing::Spit(dir / "bad.json", R"({"type": "service_account", "private_key": "not a key"})");
  options.gcs_credentials_file = (dir / "bad.json").string();
  auto fs = NewGcsFileSystem(options);
  EXPECT_THROW(fs->WriteFile(testing::UniqueUrl("gcs") + "/x", "x"), InvalidArgumentError);
}

}  // namespace
}  // namespace cairn
