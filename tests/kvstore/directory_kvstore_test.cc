#include "kvstore/directory_kvstore.h"

#include <gtest/gtest.h>

#include "cairn/error.h"
#include "ocdbt_test_util.h"

namespace cairn::kvstore {
namespace {

TEST(DirectoryKvStore, WriteReadList) {
  auto fs = NewInMemoryFileSystem();
  DirectoryKvStore store(fs, "/ckpt/params");
  EXPECT_TRUE(store.ListKeys().empty());  // no root yet
  store.Write("a/.zarray", "{}");
  store.Write("a/0.0", "chunk");
  store.Write("a.c/0", "other");
  store.Write("b/c/d/e", "deep");
  store.Write("_METADATA", "m");
  store.Write("a/0.0", "rewritten");
  store.Flush();
  EXPECT_EQ(*store.Read("a/0.0"), "rewritten");
  EXPECT_EQ(*fs->ReadFile("/ckpt/params/b/c/d/e").data(), 'd');
  EXPECT_FALSE(store.Read("a").has_value());  // a directory is not a value
  EXPECT_FALSE(store.Read("missing").has_value());
  EXPECT_EQ(store.ListKeys(),
            (std::vector<std::string>{"_METADATA", "a.c/0", "a/.zarray", "a/0.0", "b/c/d/e"}));  // byte order
  EXPECT_EQ(store.ListKeys("a/"), (std::vector<std::string>{"a/.zarray", "a/0.0"}));
  EXPECT_EQ(store.ListKeys("a"), (std::vector<std::string>{"a.c/0", "a/.zarray", "a/0.0"}));
  EXPECT_EQ(store.ListKeys("b/c"), (std::vector<std::string>{"b/c/d/e"}));
  EXPECT_TRUE(store.ListKeys("zz").empty());
  EXPECT_NE(store.Describe().find("/ckpt/params"), std::string::npos);
}

TEST(DirectoryKvStore, RejectsEscapingKeys) {
  auto fs = NewInMemoryFileSystem();
  DirectoryKvStore store(fs, "/root");
  for (const std::string& bad : std::vector<std::string>{"", "/abs", "a//b", "a/", "./a", "a/./b", "..", "a/../../x", std::string("a\0b", 3)}) {
    EXPECT_THROW(store.Write(bad, "v"), InvalidArgumentError) << bad;
    EXPECT_THROW(store.Read(bad), InvalidArgumentError) << bad;
  }
  store.Write("..a/b..", "dots inside names are fine");
  EXPECT_EQ(*store.Read("..a/b.."), "dots inside names are fine");
}

TEST(DirectoryKvStore, RealFileSystem) {
  testing::TempDir tmp;
  DirectoryKvStore store(FileSystem::Default(), tmp.path() / "x");
  store.Write("p/q", std::string(100000, 'q'));
  store.Flush();
  EXPECT_EQ(store.Read("p/q")->size(), 100000u);
  EXPECT_EQ(store.ListKeys(), (std::vector<std::string>{"p/q"}));
}

}  // namespace
}  // namespace cairn::kvstore
