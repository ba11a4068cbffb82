// Hostile files (issue 13): a FIFO, a socket or a device in place of any file or directory of a checkpoint; a 2 GB
// sparse file in place of any file; a `.zarray` claiming a huge array of tiny chunks; a link swapped in between the
// check for links and the open. Every reader (restore, metadata, DescribeCheckpoint as `cairn info`, VerifyCheckpoint
// as `cairn verify`) finishes promptly, allocates no more than the real data needs, and when it fails names the file.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <future>
#include <mutex>

#include "cairn/cairn.h"
#include "cairn/inspect.h"
#include "cairn/verify.h"
#include "peak_rss.h"
#include "test_util.h"

namespace cairn {
namespace {

namespace fs = std::filesystem;
using cairn::testing::Iota;
using cairn::testing::Noise;

Tree State() {
  return Tree::Dict({{"params", Tree::Dict({{"w", Noise({32, 40})}, {"b", Iota({5}, DType::kInt32)}})},
                     {"step", Tree::Scalar(int64_t{7})}});
}

struct Layout {
  const char* name;
  bool ocdbt;
  bool zarr3;
};
constexpr Layout kLayouts[] = {{"ocdbt", true, false}, {"directories", false, false}, {"zarr3", false, true}};

// A checkpoint of State() in `layout` at `dir`, or a copy of Orbax's legacy checkpoint (zarr v2 directories and
// the msgpack `checkpoint` file) for "legacy".
void MakeCheckpoint(const Layout& layout, const fs::path& dir) {
  PyTreeCheckpointHandlerOptions options;
  options.use_ocdbt = layout.ocdbt;
  options.use_zarr3 = layout.zarr3;
  Checkpointer(std::make_unique<PyTreeCheckpointHandler>(options)).save(dir, args::PyTreeSave{State()});
}
void CopyLegacyFixture(const fs::path& dir) {
  fs::copy(cairn::testing::FixturesDir() / "zarr_v2/aggregate_some.checkpoint", dir, fs::copy_options::recursive);
}

// Every file and directory below `dir`, relative, deepest first (so that replacing one never hides another).
std::vector<fs::path> EntriesBelow(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) out.push_back(fs::relative(entry.path(), dir));
  std::sort(out.begin(), out.end(), [](const fs::path& a, const fs::path& b) { return a.string() > b.string(); });
  return out;
}

// The readers of a checkpoint. Each returns the text of what went wrong, or "" when it read the checkpoint as intact.
struct Reader {
  const char* name;
  std::function<std::string(const fs::path&)> read;
};
std::string ErrorText(const std::function<void()>& fn) {
  try {
    fn();
    return "";
  } catch (const Error& e) {
    return e.what();
  }
}
std::vector<Reader> Readers() {
  return {
      {"restore", [](const fs::path& p) {
         return ErrorText([&] { Checkpointer(std::make_unique<PyTreeCheckpointHandler>()).restore(p); });
       }},
      {"metadata", [](const fs::path& p) {
         return ErrorText([&] { Checkpointer(std::make_unique<PyTreeCheckpointHandler>()).metadata(p); });
       }},
      {"info", [](const fs::path& p) { return ErrorText([&] { DescribeCheckpoint(p).dump(); }); }},
      {"verify", [](const fs::path& p) {
         std::string text;
         try {
           for (const auto& problem : VerifyCheckpoint(p).problems) {
             text += problem.where + ": " + problem.message + "\n";
           }
         } catch (const Error& e) {
           text = e.what();
         }
         return text;
       }},
  };
}

// Runs `fn` and fails the test if it does not finish within a few seconds (it takes milliseconds). A call stuck
// opening the FIFO at `fifo` is then released by opening its other end, so that the test ends either way.
std::string RunWithin(const std::function<std::string()>& fn, const fs::path& fifo) {
  auto result = std::async(std::launch::async, fn);
  if (result.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
    ADD_FAILURE() << "blocked on " << fifo;
    while (result.wait_for(std::chrono::milliseconds(10)) != std::future_status::ready) {
      for (const int mode : {O_WRONLY, O_RDONLY}) {
        const int fd = ::open(fifo.c_str(), mode | O_NONBLOCK);
        if (fd >= 0) ::close(fd);
      }
    }
  }
  return result.get();
}

void MakeSocket(const fs::path& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  ASSERT_LT(path.string().size(), sizeof(address.sun_path));
  std::strcpy(address.sun_path, path.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)), 0) << path;
  ::close(fd);  // the socket file stays
}

TEST(HostileFiles, SpecialFilesAreRefusedWithoutBlocking) {
  std::vector<std::string> kinds = {"fifo", "socket"};
  if (::geteuid() == 0) kinds.push_back("device");  // mknod needs root
  int cases = 0;
  for (const std::string layout_name : {"ocdbt", "directories", "zarr3", "legacy"}) {
    SCOPED_TRACE(layout_name);
    cairn::testing::TempDir tmp;
    const fs::path ckpt = tmp / "c";  // short: a socket's path is limited to 108 bytes
    if (layout_name == "legacy") {
      CopyLegacyFixture(ckpt);
    } else {
      for (const auto& layout : kLayouts) {
        if (layout.name == layout_name) MakeCheckpoint(layout, ckpt);
      }
    }
    const fs::path saved = tmp / "saved";
    for (const fs::path& relative : EntriesBelow(ckpt)) {
      for (const auto& kind : kinds) {
        SCOPED_TRACE(relative.string() + " as a " + kind);
        const fs::path path = ckpt / relative;
        const bool was_file = fs::is_regular_file(path);
        fs::rename(path, saved);
        if (kind == "fifo") {
          ASSERT_EQ(::mkfifo(path.c_str(), 0644), 0);
        } else if (kind == "socket") {
          MakeSocket(path);
        } else {
          ASSERT_EQ(::mknod(path.c_str(), S_IFCHR | 0644, makedev(1, 5)), 0);  // a /dev/zero
        }
        for (const auto& reader : Readers()) {
          SCOPED_TRACE(reader.name);
          ++cases;
          const std::string error = RunWithin([&] { return reader.read(ckpt); }, path);
          // A reader that needs the file fails naming it; one that does not (info reads no chunk) may succeed.
          if (!error.empty()) {
            EXPECT_NE(error.find(relative.filename().string()), std::string::npos) << error;
          }
          // Every regular file but the commit file is read by verify. (A directory replaced by a special file reads as
          // a missing directory, which for `cairn_checksums/` is a checkpoint without checksums, as Orbax writes.)
          if (reader.name == std::string("verify") && was_file && relative.filename() != "commit_success.txt") {
            EXPECT_FALSE(error.empty()) << "verify passed with a " << kind << " in place of " << relative;
          }
        }
        fs::remove(path);
        fs::rename(saved, path);
      }
    }
  }
  std::cout << "[ cases    ] " << cases << " reads of a checkpoint with a special file in it\n";
}

// Writes too: a FIFO where the manager writes its root metadata (beside the file, renamed into place) makes the
// manager fail, naming it, instead of waiting for a reader that never comes.
TEST(HostileFiles, WritesNeverBlockOnAFifo) {
  cairn::testing::TempDir tmp;
  fs::create_directories(tmp / "run/metadata");
  const fs::path fifo = tmp / "run/metadata/_ROOT_METADATA.tmp";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
  const std::string error = RunWithin(
      [&] { return ErrorText([&] { CheckpointManager(tmp / "run", {}, {}, nlohmann::json{{"run", 1}}); }); }, fifo);
  EXPECT_NE(error.find("_ROOT_METADATA.tmp"), std::string::npos) << error;
}

TEST(HostileFiles, SparseGiantsAreRefusedBySize) {
  constexpr off_t kGiant = off_t{2} << 30;
  int cases = 0;
  for (const std::string layout_name : {"ocdbt", "directories", "zarr3", "legacy"}) {
    SCOPED_TRACE(layout_name);
    cairn::testing::TempDir tmp;
    const fs::path ckpt = tmp / "c";
    if (layout_name == "legacy") {
      CopyLegacyFixture(ckpt);
    } else {
      for (const auto& layout : kLayouts) {
        if (layout.name == layout_name) MakeCheckpoint(layout, ckpt);
      }
    }
    for (const fs::path& relative : EntriesBelow(ckpt)) {
      const fs::path path = ckpt / relative;
      if (!fs::is_regular_file(path)) continue;
      SCOPED_TRACE(relative.string() + " as a 2 GiB sparse file");
      const std::string original = cairn::testing::Slurp(path);
      fs::resize_file(path, kGiant);  // (the original bytes first, then a hole)
      for (const auto& reader : Readers()) {
        SCOPED_TRACE(reader.name);
        ++cases;
        cairn::testing::ResetPeakRss();
        const uint64_t before = cairn::testing::PeakRss();
        const std::string error = reader.read(ckpt);
        const uint64_t grown = cairn::testing::PeakRssGrowth(before);
        EXPECT_LT(grown, uint64_t{256} << 20) << reader.name << " took " << (grown >> 20) << " MiB";
        if (!error.empty()) {
          EXPECT_NE(error.find(relative.filename().string()), std::string::npos) << error;
        }
      }
      cairn::testing::Spit(path, original);
    }
  }
  std::cout << "[ cases    ] " << cases << " reads of a checkpoint with a 2 GiB sparse file in it\n";
}

// A `.zarray` (or `zarr.json`) claiming a 1 GiB array of 16-element chunks where one small chunk is stored: restore
// fails at once on the first missing chunk, without allocating (let alone touching) the claimed gigabyte; a target
// asking for only what is stored restores it.
TEST(HostileFiles, ShapesThatLieFailBeforeAllocating) {
  for (const bool zarr3 : {false, true}) {
    SCOPED_TRACE(zarr3 ? "zarr3" : "zarr v2");
    cairn::testing::TempDir tmp;
    PyTreeCheckpointHandlerOptions options;
    options.use_ocdbt = false;
    options.use_zarr3 = zarr3;
    options.verify_checksums = false;  // what the shape check alone catches
    Checkpointer ckptr(std::make_unique<PyTreeCheckpointHandler>(options));
    const fs::path ckpt = tmp / "c";
    ckptr.save(ckpt, args::PyTreeSave{Tree::Dict({{"x", Iota({16})}})});
    const fs::path metadata = ckpt / "x" / (zarr3 ? "zarr.json" : ".zarray");
    auto json = nlohmann::json::parse(cairn::testing::Slurp(metadata));
    json["shape"] = {int64_t{1} << 28};  // 1 GiB of float32
    fs::remove(ckpt / "_METADATA");      // (its shape would be checked against the zarr metadata's)
    cairn::testing::Spit(metadata, json.dump());
    cairn::testing::ResetPeakRss();
    const uint64_t before = cairn::testing::PeakRss();
    const auto start = std::chrono::steady_clock::now();
    try {
      ckptr.restore(ckpt);
      ADD_FAILURE() << "a restore of a 1 GiB claim over one 64-byte chunk succeeded";
    } catch (const CorruptionError& e) {
      EXPECT_NE(std::string(e.what()).find("missing"), std::string::npos) << e.what();
    }
    const uint64_t grown = cairn::testing::PeakRssGrowth(before);
    EXPECT_LT(grown, uint64_t{64} << 20) << "the restore took " << (grown >> 20) << " MiB";
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
    // What the caller's target asks for, and no more, is allocated: the stored chunk restores.
    const Tree target = Tree::Dict({{"x", ArraySpec{DType::kFloat32, {16}}}});
    EXPECT_EQ(ckptr.restore(ckpt, args::PyTreeRestore{target, {}, false, /*strict=*/false}),
              Tree::Dict({{"x", Iota({16})}}));
  }
}

// A FileSystem that, on the open of `victim` (or of anything below it), first swaps it for a symbolic link to a
// faithful copy outside the checkpoint: the attacker acting after the walk that refuses links, before the open.
class SwapForLinkAtOpen final : public FileSystem {
 public:
  SwapForLinkAtOpen(fs::path victim, fs::path outside) : victim_(std::move(victim)), outside_(std::move(outside)) {}
  bool swapped() const { return swapped_; }

  std::optional<FileInfo> Stat(const fs::path& path) override { return base_->Stat(path); }
  std::optional<FileInfo> StatNoFollow(const fs::path& path) override { return base_->StatNoFollow(path); }
  void CreateDir(const fs::path& path, std::optional<uint32_t> mode) override { base_->CreateDir(path, mode); }
  std::unique_ptr<WritableFile> NewWritableFile(const fs::path& path) override { return base_->NewWritableFile(path); }
  std::unique_ptr<ReadableFile> OpenForRead(const fs::path& path) override {
    MaybeSwap(path);
    return base_->OpenForRead(path);
  }
  std::unique_ptr<ReadableFile> OpenForReadBelow(const fs::path& root, const fs::path& relative) override {
    MaybeSwap(root / relative);
    return base_->OpenForReadBelow(root, relative);
  }
  std::vector<std::string> ListDir(const fs::path& path) override { return base_->ListDir(path); }
  void Rename(const fs::path& from, const fs::path& to) override { base_->Rename(from, to); }
  void RemoveFile(const fs::path& path) override { base_->RemoveFile(path); }
  void RemoveEmptyDir(const fs::path& path) override { base_->RemoveEmptyDir(path); }
  void SyncDir(const fs::path& path) override { base_->SyncDir(path); }

 private:
  void MaybeSwap(const fs::path& path) {
    std::lock_guard lock(mu_);
    const std::string p = path.lexically_normal().string(), v = victim_.lexically_normal().string();
    if (swapped_ || (p != v && p.rfind(v + "/", 0) != 0)) return;
    fs::rename(victim_, outside_);
    fs::create_symlink(outside_, victim_);
    swapped_ = true;
  }

  const std::shared_ptr<FileSystem> base_ = FileSystem::Default();
  const fs::path victim_, outside_;
  std::mutex mu_;
  bool swapped_ = false;
};

TEST(HostileFiles, LinksSwappedInAfterTheCheckAreNotFollowed) {
  int cases = 0;
  for (const auto& layout : kLayouts) {
    SCOPED_TRACE(layout.name);
    cairn::testing::TempDir tmp;
    const fs::path ckpt = tmp / "c";
    MakeCheckpoint(layout, ckpt);
    for (const fs::path& relative : EntriesBelow(ckpt)) {
      if (relative == "commit_success.txt") continue;  // only looked at, never read
      SCOPED_TRACE(relative.string());
      const fs::path pristine = tmp / "pristine";
      fs::copy(ckpt, pristine, fs::copy_options::recursive);
      auto swapping = std::make_shared<SwapForLinkAtOpen>(ckpt / relative, tmp / "outside");
      CheckpointerOptions options;
      options.file_system = swapping;
      Checkpointer ckptr(std::make_unique<PyTreeCheckpointHandler>(), options);
      const std::string error = ErrorText([&] { ckptr.restore(ckpt); });
      if (swapping->swapped()) {
        ++cases;
        EXPECT_NE(error.find("symbolic link"), std::string::npos) << "the restore followed a link: " << error;
      }
      fs::remove_all(ckpt);
      fs::remove_all(tmp / "outside");
      fs::rename(pristine, ckpt);
    }
  }
  EXPECT_GE(cases, 20);
  std::cout << "[ cases    ] " << cases << " links swapped in between the check and the open\n";
}

}  // namespace
}  // namespace cairn
