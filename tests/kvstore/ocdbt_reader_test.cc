// Reader features the fixtures do not exercise: numbered manifests and hostile data file paths.
#include <gtest/gtest.h>

#include "cairn/error.h"
#include "kvstore/ocdbt/manifest.h"
#include "kvstore/ocdbt/ocdbt.h"
#include "kvstore/ocdbt/reader.h"

namespace cairn::kvstore {
namespace {

TEST(OcdbtReader, NumberedManifestPicksLatest) {
  auto fs = NewInMemoryFileSystem();
  auto writer = NewOcdbtWriter(fs, "/db");
  writer->Write("key", "new value");
  writer->Write("big", std::string(3000, 'b'));
  writer->Flush();
  ocdbt::Manifest single = ocdbt::DecodeManifest(fs->ReadFile("/db/manifest.ocdbt"), "m");

  ocdbt::Manifest config_only;
  config_only.config = single.config;
  config_only.config.manifest_kind = ocdbt::ManifestKind::kNumbered;
  fs->WriteFile("/db/manifest.ocdbt", ocdbt::EncodeManifest(config_only));
  // No numbered manifest yet: an empty database.
  EXPECT_TRUE(OcdbtReader(fs, "/db").ListKeys().empty());

  ocdbt::Manifest gen1 = single;
  gen1.versions[0].root = ocdbt::IndirectRef::Missing();
  gen1.versions[0].root.file = {};
  gen1.versions[0].root_height = 0;
  fs->WriteFile("/db/manifest.0000000000000001", ocdbt::EncodeManifest(gen1));
  ocdbt::Manifest gen2 = single;
  gen2.versions[0].generation = 2;
  fs->WriteFile("/db/manifest.0000000000000002", ocdbt::EncodeManifest(gen2));
  fs->WriteFile("/db/manifest.00000000000000zz", "not a manifest name");  // ignored

  OcdbtReader reader(fs, "/db");
  EXPECT_EQ(reader.latest_version()->generation, 2u);
  EXPECT_EQ(*reader.Read("key"), "new value");
  EXPECT_EQ(*reader.Read("big"), std::string(3000, 'b'));

  // A numbered manifest whose config disagrees with manifest.ocdbt is corrupt.
  ocdbt::Manifest other = gen2;
  other.config.uuid[0] ^= 1;
  other.versions[0].generation = 3;
  fs->WriteFile("/db/manifest.0000000000000003", ocdbt::EncodeManifest(other));
  EXPECT_THROW(OcdbtReader(fs, "/db"), CorruptionError);
}

TEST(OcdbtReader, RejectsPathsOutsideTheDatabase) {
  auto fs = NewInMemoryFileSystem();
  auto writer = NewOcdbtWriter(fs, "/db");
  writer->Write("key", "value");
  writer->Flush();
  ocdbt::Manifest m = ocdbt::DecodeManifest(fs->ReadFile("/db/manifest.ocdbt"), "m");
  for (const char* bad : {"../outside", "/etc/passwd", "d/../../x"}) {
    ocdbt::Manifest damaged = m;
    damaged.versions[0].root.file = {"", bad};
    fs->WriteFile("/db/manifest.ocdbt", ocdbt::EncodeManifest(damaged));
    EXPECT_THROW(OcdbtReader(fs, "/db").ListKeys(), CorruptionError) << bad;
  }
}

TEST(OcdbtReader, RootHeightMismatchIsCorruption) {
  auto fs = NewInMemoryFileSystem();
  auto writer = NewOcdbtWriter(fs, "/db");
  writer->Write("key", "value");
  writer->Flush();
  ocdbt::Manifest m = ocdbt::DecodeManifest(fs->ReadFile("/db/manifest.ocdbt"), "m");
  m.versions[0].root_height = 1;
  fs->WriteFile("/db/manifest.ocdbt", ocdbt::EncodeManifest(m));
  EXPECT_THROW(OcdbtReader(fs, "/db").Read("key"), CorruptionError);
}

TEST(OcdbtReader, ImpossibleSizesAreCorruptionNotAllocations) {
  auto fs = NewInMemoryFileSystem();
  auto writer = NewOcdbtWriter(fs, "/db");
  writer->Write("key", "value");
  writer->Flush();
  const std::string good = fs->ReadFile("/db/manifest.ocdbt");
  ocdbt::Manifest m = ocdbt::DecodeManifest(good, "m");
  for (uint64_t length : {uint64_t{1} << 40, uint64_t{1} << 62}) {
    ocdbt::Manifest damaged = m;
    damaged.versions[0].root.length = length;
    fs->WriteFile("/db/manifest.ocdbt", ocdbt::EncodeManifest(damaged));
    EXPECT_THROW(OcdbtReader(fs, "/db").ListKeys(), CorruptionError) << length;
  }
  // A "manifest" far larger than any real one is refused before it is read.
  fs->WriteFile("/db/manifest.ocdbt", good + std::string((64 << 20) + 1, '\0'));
  EXPECT_THROW(OcdbtReader(fs, "/db"), CorruptionError);
}

}  // namespace
}  // namespace cairn::kvstore
