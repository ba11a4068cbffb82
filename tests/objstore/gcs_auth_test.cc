// GCS credentials from a service account's key file: cairn signs a JWT with the key (RS256) and exchanges it for a
// token at the key's token_uri, here the tests' own token endpoint (servers.py token), which checks the signature
// and claims; the token then goes with every request to fake-gcs-server. And from a VM's metadata server, which
// the same endpoint plays.
#include <gtest/gtest.h>
#include <stdlib.h>

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

TEST(GcsMetadataServer, TokensComeFromTheVmsMetadataServer) {
  testing::TempDir dir;
  testing::ServerProcess token("token", {}, /*proxy=*/false, {"--key-file", (dir / "key.json").string()});
  ObjectStoreOptions options = testing::Server("gcs").Options();
  // No emulator variable and no key file: what a job on a GCE VM sees. GCE_METADATA_HOST points at the tests' own
  // metadata endpoint instead of metadata.google.internal.
  const std::string emulator = std::getenv("STORAGE_EMULATOR_HOST");
  ::unsetenv("STORAGE_EMULATOR_HOST");
  ::setenv("GCE_METADATA_HOST", token.url().substr(std::string("http://").size()).c_str(), 1);
  auto fs = NewGcsFileSystem(options);
  ::setenv("STORAGE_EMULATOR_HOST", emulator.c_str(), 1);
  const std::filesystem::path root = testing::UniqueUrl("gcs");
  fs->WriteFile(root / "a", "hello");
  EXPECT_EQ(fs->ReadFile(root / "a"), "hello");
  ::unsetenv("GCE_METADATA_HOST");
  const auto stats = TokenStats(token);
  EXPECT_EQ(stats.value("metadata", 0), 1) << stats.dump();
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
