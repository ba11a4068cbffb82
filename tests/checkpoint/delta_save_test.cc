// Delta saves (SaveOptions::delta_base, docs/format.md "Delta steps"): a step that shares its unchanged chunks with
// an earlier one through hard-linked data files restores exactly, survives the deletion of its base (a crash in the
// middle of it included), refuses a missing, uncommitted or damaged base before writing anything, and cannot be
// corrupted silently by a hash that matches other bytes.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstring>
#include <filesystem>
#include <set>

#include "cairn/cairn.h"
#include "core/crc32c.h"
#include "io/fault_injecting_file_system.h"
#include "core/sha256.h"
#include "metadata/checksums.h"
#include "metadata/delta_record.h"
#include "test_util.h"

namespace cairn {
namespace {

namespace fs = std::filesystem;
using cairn::testing::Noise;
using cairn::testing::ScratchDir;

// A frozen base (256 KiB) and a small adapter that changes with `step` (16 KiB, same shape as `twin`, so that the
// collision test can aim a hash at it).
Tree State(int step) {
  Array adapter = Noise({64, 64});
  for (auto& v : adapter.mutable_data<uint32_t>()) v += static_cast<uint32_t>(step);
  return Tree::Dict({{"frozen", Noise({256, 256})},
                     {"twin", Noise({64, 64})},
                     {"adapter", adapter},
                     {"step", Tree::Scalar(int64_t{step})}});
}

// `array` (uint32) with every element moved: other bytes throughout.
Tree Shifted(Array array, uint32_t by = 1000) {
  for (auto& v : array.mutable_data<uint32_t>()) v += by;
  return Tree(std::move(array));
}

PyTreeCheckpointHandlerOptions Uncompressed() {
  PyTreeCheckpointHandlerOptions options;
  options.use_compression = false;  // stored chunk bytes are the array's bytes: the collision test can hash them
  return options;
}

Checkpointer MakeCheckpointer(PyTreeCheckpointHandlerOptions options = Uncompressed(),
                              std::shared_ptr<FileSystem> file_system = FileSystem::Default()) {
  CheckpointerOptions checkpointer_options;
  checkpointer_options.file_system = std::move(file_system);
  return Checkpointer(std::make_unique<StandardCheckpointHandler>(options), checkpointer_options);
}

SaveOptions Full() { return SaveOptions{.record_delta_hashes = true}; }
SaveOptions DeltaOf(const fs::path& base, double max_changed_fraction = 1.0) {
  return SaveOptions{.delta_base = base, .delta_max_changed_fraction = max_changed_fraction};
}

nlohmann::ordered_json DeltaInfo(const fs::path& step) { return DescribeCheckpoint(step)["items"][0]["delta"]; }

// Data files of a step with more than one name (shared with another step).
size_t LinkedDataFiles(const fs::path& step) {
  size_t linked = 0;
  for (const auto& entry : fs::recursive_directory_iterator(step)) {
    if (entry.is_regular_file() && entry.path().parent_path().filename() == "d" && entry.hard_link_count() > 1) {
      ++linked;
    }
  }
  return linked;
}

void ExpectVerifies(const fs::path& step) {
  VerifyReport report = VerifyCheckpoint(step);
  for (const auto& problem : report.problems) ADD_FAILURE() << problem.where << ": " << problem.message;
}

void ExpectNothingWritten(const fs::path& root, const std::set<std::string>& expected) {
  std::set<std::string> names;
  for (const auto& entry : fs::directory_iterator(root)) names.insert(entry.path().filename().string());
  EXPECT_EQ(names, expected);
}

TEST(DeltaSave, WritesOnlyWhatChangedAndRestoresExactly) {
  ScratchDir dir;
  Checkpointer ckptr = MakeCheckpointer();
  ckptr.save(dir / "1", args::StandardSave{State(1)}, Full());
  ckptr.save(dir / "2", args::StandardSave{State(2)}, DeltaOf(dir / "1"));
  EXPECT_EQ(ckptr.restore(dir / "1"), State(1));
  EXPECT_EQ(ckptr.restore(dir / "2"), State(2));

  const auto full = DeltaInfo(dir / "1");
  EXPECT_TRUE(full["base"].is_null());
  EXPECT_EQ(full["bytes_shared"], 0u);
  const uint64_t all = full["bytes_written"].get<uint64_t>();
  EXPECT_GE(all, (256u * 256 + 2 * 64 * 64) * 4);
  const auto delta = DeltaInfo(dir / "2");
  EXPECT_EQ(delta["bytes_written"], 64u * 64 * 4) << delta.dump();  // the adapter alone
  EXPECT_EQ(delta["bytes_shared"], all - 64u * 64 * 4) << delta.dump();
  EXPECT_GT(LinkedDataFiles(dir / "2"), 0u);
  ExpectVerifies(dir / "1");
  ExpectVerifies(dir / "2");
}

TEST(DeltaSave, CompressedAndCompositeItems) {
  ScratchDir dir;
  Checkpointer ckptr(std::make_unique<CompositeCheckpointHandler>());
  auto save = [&](int step, const SaveOptions& options) {
    args::Composite composite;
    composite.add("state", args::StandardSave{State(step)});
    composite.add("meta", args::JsonSave{nlohmann::json{{"step", step}}});
    ckptr.save(dir / std::to_string(step), composite, options);
  };
  save(1, Full());
  save(2, DeltaOf(dir / "1"));
  args::Composite restore_args;
  restore_args.add("state", args::StandardRestore{});
  Tree restored = ckptr.restore(dir / "2", restore_args);
  EXPECT_EQ(restored["state"], State(2));
  auto described = DescribeCheckpoint(dir / "2");
  bool seen = false;
  for (const auto& item : described["items"]) {
    if (item["name"] != "state") continue;
    seen = true;
    EXPECT_GT(item["delta"]["bytes_shared"].get<uint64_t>(), 10 * item["delta"]["bytes_written"].get<uint64_t>())
        << item["delta"].dump();
  }
  EXPECT_TRUE(seen);
  ExpectVerifies(dir / "2");
}

TEST(DeltaSave, EveryStepSurvivesTheDeletionOfItsBases) {
  ScratchDir dir;
  Checkpointer ckptr = MakeCheckpointer();
  ckptr.save(dir / "1", args::StandardSave{State(1)}, Full());
  ckptr.save(dir / "2", args::StandardSave{State(2)}, DeltaOf(dir / "1"));
  ckptr.save(dir / "3", args::StandardSave{State(3)}, DeltaOf(dir / "2"));
  EXPECT_GT(DeltaInfo(dir / "3")["bytes_shared"].get<uint64_t>(), 0u);
  fs::remove_all(dir / "1");
  EXPECT_EQ(ckptr.restore(dir / "2"), State(2));
  EXPECT_EQ(ckptr.restore(dir / "3"), State(3));
  ExpectVerifies(dir / "2");
  fs::remove_all(dir / "2");
  EXPECT_EQ(ckptr.restore(dir / "3"), State(3));
  ExpectVerifies(dir / "3");
  // A delta against a step that was itself a delta of a deleted step.
  ckptr.save(dir / "4", args::StandardSave{State(4)}, DeltaOf(dir / "3"));
  fs::remove_all(dir / "3");
  EXPECT_EQ(ckptr.restore(dir / "4"), State(4));
}

// A manager deleting the base step fails at every remove call in turn (a crash in the middle of the deletion): the
// delta step is never harmed.
TEST(DeltaSave, CrashDuringBaseDeletionNeverBreaksTheDelta) {
  int64_t n = 0;
  for (;; ++n) {
    ScratchDir dir;
    auto faulty = std::make_shared<io::FaultInjectingFileSystem>(FileSystem::Default());
    CheckpointManagerOptions options;
    options.enable_async_checkpointing = false;
    options.save_deltas = true;
    options.file_system = faulty;
    {
      CheckpointManager manager(dir.path(), options);
      manager.save(1, args::StandardSave{State(1)});
      manager.save(2, args::StandardSave{State(2)});
      ASSERT_GT(DeltaInfo(dir / "2" / "default")["bytes_shared"].get<uint64_t>(), 0u);
      faulty->FailNth(n, [&](io::FsOp op, const fs::path& path) {
        return (op == io::FsOp::kRemoveFile || op == io::FsOp::kRemoveDir || op == io::FsOp::kRename) &&
               path.string().rfind((dir.path() / "1").string(), 0) == 0;
      });
      try {
        manager.delete_step(1);
      } catch (const Error&) {
      }
    }
    const bool fired = faulty->fired();
    CheckpointManagerOptions reader_options;
    reader_options.enable_async_checkpointing = false;
    CheckpointManager reader(dir.path(), reader_options);
    EXPECT_EQ(reader.restore(2), State(2)) << "fault " << n;
    ExpectVerifies(dir / "2");
    if (!fired) break;
  }
  EXPECT_GT(n, 3);  // the sweep did fail removes
}

TEST(DeltaSave, MissingUncommittedOrDamagedBaseIsRefusedBeforeWriting) {
  ScratchDir dir;
  Checkpointer ckptr = MakeCheckpointer();
  ckptr.save(dir / "1", args::StandardSave{State(1)}, Full());
  auto copy_of_base = [&](const std::string& name) {
    fs::copy(dir / "1", dir / name, fs::copy_options::recursive);
    return dir / name;
  };
  const std::set<std::string> before = {"1"};
  auto expect_refused = [&](const fs::path& base, const char* why, auto error_type) {
    using Expected = decltype(error_type);
    try {
      ckptr.save(dir / "2", args::StandardSave{State(2)}, DeltaOf(base));
      ADD_FAILURE() << why << ": the save went through";
    } catch (const Expected& e) {
      EXPECT_NE(std::string(e.what()).find(base.string()), std::string::npos) << why << ": " << e.what();
    }
    EXPECT_FALSE(fs::exists(dir / "2")) << why;
    EXPECT_FALSE(fs::exists(dir / "2.orbax-checkpoint-tmp")) << why;
  };
  expect_refused(dir / "missing", "missing", NotFoundError("x"));
  ExpectNothingWritten(dir.path(), before);

  fs::create_directories(dir / "7.orbax-checkpoint-tmp");
  expect_refused(dir / "7.orbax-checkpoint-tmp", "unfinished", InvalidArgumentError("x"));
  fs::remove_all(dir / "7.orbax-checkpoint-tmp");
  const fs::path uncommitted = copy_of_base("uncommitted");
  fs::remove(uncommitted / "commit_success.txt");
  expect_refused(uncommitted, "uncommitted", InvalidArgumentError("x"));

  const fs::path bad_record = copy_of_base("bad_record");
  {
    std::string text = testing::Slurp(bad_record / "cairn_delta/process_0");
    text[text.size() / 2] ^= 1;
    testing::Spit(bad_record / "cairn_delta/process_0", text);
  }
  expect_refused(bad_record, "damaged delta record", CorruptionError("x"));

  const fs::path truncated = copy_of_base("truncated");
  for (const auto& entry : fs::directory_iterator(truncated / "ocdbt.process_0/d")) {
    fs::resize_file(entry.path(), entry.file_size() / 2);
  }
  expect_refused(truncated, "truncated data file", CorruptionError("x"));

  const fs::path no_manifest = copy_of_base("no_manifest");
  fs::remove(no_manifest / "manifest.ocdbt");
  expect_refused(no_manifest, "missing manifest", CorruptionError("x"));

  const fs::path bad_checksums = copy_of_base("bad_checksums");
  testing::Spit(bad_checksums / "cairn_checksums/process_0", "{]");
  expect_refused(bad_checksums, "damaged checksums", CorruptionError("x"));

  // The base itself is untouched by all of this.
  EXPECT_EQ(ckptr.restore(dir / "1"), State(1));
  EXPECT_THROW(ckptr.save(dir / "1", args::StandardSave{State(2)}, SaveOptions{.force = true, .delta_base = dir / "1"}),
               InvalidArgumentError);
}

// The base's record (one without raw-chunk hashes, as older steps have) is forged so that the hash of another chunk
// (`twin`) equals the hash of the new adapter: a
// collision, as far as SHA-256 can tell. The base's CRC-32C of that chunk still differs, so nothing is shared and
// the step restores exactly. With the CRC forged too, the step does point at the wrong bytes - and its own checksum
// (taken from the bytes being saved) makes every restore and `cairn verify` fail loudly rather than return them.
TEST(DeltaSave, HashCollisionCannotCorruptSilently) {
  for (const bool forge_crc : {false, true}) {
    ScratchDir dir;
    Checkpointer ckptr = MakeCheckpointer();
    ckptr.save(dir / "1", args::StandardSave{State(1)}, Full());
    const Array next_adapter = State(2)["adapter"].array();
    const std::string_view bytes(reinterpret_cast<const char*>(next_adapter.bytes().data()),
                                 next_adapter.bytes().size());
    auto record = metadata::DecodeDeltaRecord(testing::Slurp(dir / "1/cairn_delta/process_0"), "record");
    // A base recorded before raw-chunk hashes, whose values are found by their stored bytes' hash (uncompressed, those
    // are the raw bytes: what an older cairn recorded).
    record.sha256.merge(record.raw_sha256);
    record.raw_sha256.clear();
    ASSERT_TRUE(record.sha256.count("twin/0.0"));
    record.sha256["twin/0.0"] = Sha256(bytes);
    testing::Spit(dir / "1/cairn_delta/process_0", metadata::EncodeDeltaRecord(record));
    if (forge_crc) {
      auto sums = metadata::DecodeChecksums(testing::Slurp(dir / "1/cairn_checksums/process_0"), "sums");
      sums.chunks["twin/0.0"] = Crc32c(bytes);
      sums.chunk_blocks.erase("twin/0.0");
      testing::Spit(dir / "1/cairn_checksums/process_0", metadata::EncodeChecksums(sums));
    }
    ckptr.save(dir / "2", args::StandardSave{State(2)}, DeltaOf(dir / "1"));
    if (!forge_crc) {
      EXPECT_EQ(ckptr.restore(dir / "2"), State(2));
      // The adapter, and `twin` itself: its recorded hash is now the forged one, so it is not found by content.
      EXPECT_EQ(DeltaInfo(dir / "2")["bytes_written"], 2 * bytes.size());
      ExpectVerifies(dir / "2");
    } else {
      EXPECT_THROW(ckptr.restore(dir / "2"), CorruptionError);
      EXPECT_FALSE(VerifyCheckpoint(dir / "2").problems.empty());
    }
  }
}

// Unchanged chunks are found by the hash of their bytes before encoding (compressed here): they are shared without
// being encoded, and only when the base stores the array alike (same dtype, chunks and codec).
TEST(DeltaSave, UnchangedChunksAreFoundBeforeEncoding) {
  ScratchDir dir;
  Checkpointer ckptr = MakeCheckpointer(PyTreeCheckpointHandlerOptions{});  // zstd
  ckptr.save(dir / "1", args::StandardSave{State(1)}, Full());
  const auto record = metadata::DecodeDeltaRecord(testing::Slurp(dir / "1/cairn_delta/process_0"), "record");
  ASSERT_TRUE(record.raw_sha256.count("frozen/0.0"));
  const Array frozen = State(1)["frozen"].array();
  EXPECT_EQ(record.raw_sha256.at("frozen/0.0"),
            Sha256(std::string_view(reinterpret_cast<const char*>(frozen.bytes().data()),
                                                  frozen.bytes().size())));
  EXPECT_FALSE(record.save_id.empty());
  ckptr.save(dir / "2", args::StandardSave{State(2)}, DeltaOf(dir / "1"));
  EXPECT_EQ(ckptr.restore(dir / "2"), State(2));
  const auto delta = DeltaInfo(dir / "2");
  EXPECT_GE(delta["bytes_shared"].get<uint64_t>(), 256u * 256 * 4) << delta.dump();
  EXPECT_LT(delta["bytes_written"].get<uint64_t>(), 2 * 64u * 64 * 4) << delta.dump();
  ExpectVerifies(dir / "2");
  // The chain goes on from a step whose shared chunks were never encoded: their hashes were carried over.
  ckptr.save(dir / "3", args::StandardSave{State(3)}, DeltaOf(dir / "2"));
  fs::remove_all(dir / "1");
  fs::remove_all(dir / "2");
  EXPECT_EQ(ckptr.restore(dir / "3"), State(3));
  EXPECT_GE(DeltaInfo(dir / "3")["bytes_shared"].get<uint64_t>(), 256u * 256 * 4);
  ExpectVerifies(dir / "3");

  // The same bytes stored another way (uncompressed now) are written anew, not taken in the base's encoding.
  Checkpointer plain = MakeCheckpointer();
  plain.save(dir / "4", args::StandardSave{State(4)}, DeltaOf(dir / "3"));
  EXPECT_EQ(DeltaInfo(dir / "4")["bytes_shared"], 0u);
  EXPECT_EQ(plain.restore(dir / "4"), State(4));
  ExpectVerifies(dir / "4");
}

// A chunk whose CRC-32C differs from the base's is known changed without SHA-256: a step in which everything changed
// records CRC-32Cs only. A save against it hashes the chunks whose CRC-32C matches and writes them once more (the base
// has no SHA-256 to prove them equal); the save after that shares them.
TEST(DeltaSave, ChangedChunksAreNotHashed) {
  ScratchDir dir;
  Checkpointer ckptr = MakeCheckpointer();
  auto state = [](uint32_t shift) {
    std::vector<std::pair<std::string, Tree>> leaves;
    for (int i = 0; i < 4; ++i) {
      Array a = Noise({64, 64});
      for (auto& v : a.mutable_data<uint32_t>()) v += shift + static_cast<uint32_t>(i);
      leaves.emplace_back("w" + std::to_string(i), Tree(std::move(a)));
    }
    return Tree::Dict(std::move(leaves));
  };
  auto record_of = [&](const char* step) {
    return metadata::DecodeDeltaRecord(testing::Slurp(dir / step / "cairn_delta/process_0"), "record");
  };
  ckptr.save(dir / "1", args::StandardSave{state(0)}, Full());
  EXPECT_EQ(record_of("1").raw_sha256.size(), 4u);  // the first save hashes everything, for the next to share
  ckptr.save(dir / "2", args::StandardSave{state(1)}, DeltaOf(dir / "1"));
  EXPECT_EQ(ckptr.restore(dir / "2"), state(1));
  EXPECT_EQ(DeltaInfo(dir / "2")["bytes_shared"], 0u);
  EXPECT_TRUE(record_of("2").raw_sha256.empty());
  EXPECT_EQ(record_of("2").raw_crc32c.size(), 4u);
  ExpectVerifies(dir / "2");
  ckptr.save(dir / "3", args::StandardSave{state(1)}, DeltaOf(dir / "2"));
  EXPECT_EQ(DeltaInfo(dir / "3")["bytes_shared"], 0u);
  EXPECT_EQ(record_of("3").raw_sha256.size(), 4u);
  ckptr.save(dir / "4", args::StandardSave{state(1)}, DeltaOf(dir / "3"));
  EXPECT_EQ(DeltaInfo(dir / "4")["bytes_written"], 0u) << DeltaInfo(dir / "4").dump();
  fs::remove_all(dir / "3");
  EXPECT_EQ(ckptr.restore(dir / "4"), state(1));
  ExpectVerifies(dir / "4");
}

// A uint32 array over a buffer the test can still write to, handed over as immutable (Array::FromShared).
struct SharedBuffer {
  std::shared_ptr<uint32_t[]> values;
  Array array;
  explicit SharedBuffer(const Array& like) : values(new uint32_t[like.num_elements()]) {
    std::memcpy(values.get(), like.bytes().data(), like.num_bytes());
    array = Array::FromShared(std::shared_ptr<const void>(values, values.get()), like.dtype(), like.shape());
  }
};

// An Array::FromShared buffer saved in the base by the same handler is taken from the base unread: even bytes changed
// against the contract (done here to prove they are not read) are not seen. Another buffer with equal bytes is found
// by content, and a handler that did not save the base trusts no buffer.
TEST(DeltaSave, SameSharedBufferIsTakenUnread) {
  ScratchDir dir;
  Checkpointer ckptr = MakeCheckpointer(PyTreeCheckpointHandlerOptions{});
  SharedBuffer frozen(Noise({256, 256}));
  auto state = [&](int step, const Array& weights) {
    Tree tree = State(step);
    tree["frozen"] = Tree(weights);
    return tree;
  };
  const Array original = frozen.array.Copy();
  ckptr.save(dir / "1", args::StandardSave{state(1, frozen.array)}, Full());
  frozen.values[0] += 1;  // breaks FromShared's contract, so that a read would show
  ckptr.save(dir / "2", args::StandardSave{state(2, frozen.array)}, DeltaOf(dir / "1"));
  EXPECT_EQ(ckptr.restore(dir / "2"), state(2, original));
  EXPECT_GE(DeltaInfo(dir / "2")["bytes_shared"].get<uint64_t>(), 256u * 256 * 4);
  ExpectVerifies(dir / "2");

  // Another handler (a second checkpointer) does not trust this one's buffers: it reads the changed bytes.
  Checkpointer other = MakeCheckpointer(PyTreeCheckpointHandlerOptions{});
  other.save(dir / "3", args::StandardSave{state(3, frozen.array)}, DeltaOf(dir / "2"));
  EXPECT_EQ(other.restore(dir / "3"), state(3, frozen.array));
  // Nor does the first one, against a step it did not save.
  frozen.values[1] += 1;
  ckptr.save(dir / "4", args::StandardSave{state(4, frozen.array)}, DeltaOf(dir / "3"));
  EXPECT_EQ(ckptr.restore(dir / "4"), state(4, frozen.array));

  // An equal copy in another buffer is found by content (step 4 knew its changed chunk by CRC-32C only, so step 5
  // writes it once more and records its SHA-256; step 6 shares it).
  SharedBuffer copy(frozen.array);
  ckptr.save(dir / "5", args::StandardSave{state(5, copy.array)}, DeltaOf(dir / "4"));
  EXPECT_EQ(ckptr.restore(dir / "5"), state(5, frozen.array));
  SharedBuffer another(frozen.array);
  ckptr.save(dir / "6", args::StandardSave{state(6, another.array)}, DeltaOf(dir / "5"));
  EXPECT_EQ(ckptr.restore(dir / "6"), state(6, frozen.array));
  EXPECT_GE(DeltaInfo(dir / "6")["bytes_shared"].get<uint64_t>(), 256u * 256 * 4);
  ExpectVerifies(dir / "6");
}

TEST(DeltaSave, FrozenParametersAreTakenFromTheBase) {
  ScratchDir dir;
  Checkpointer ckptr = MakeCheckpointer(PyTreeCheckpointHandlerOptions{});  // compressed chunks
  ckptr.save(dir / "1", args::StandardSave{State(1)}, Full());
  SaveArgsMap frozen = {{"frozen", SaveArgs{.frozen = true}}, {"twin", SaveArgs{.frozen = true}}};
  ckptr.save(dir / "2", args::StandardSave{State(2), frozen}, DeltaOf(dir / "1"));
  EXPECT_EQ(ckptr.restore(dir / "2"), State(2));
  const auto delta = DeltaInfo(dir / "2");
  EXPECT_LT(delta["bytes_written"].get<uint64_t>(), 20000u) << delta.dump();
  ExpectVerifies(dir / "2");
  fs::remove_all(dir / "1");
  EXPECT_EQ(ckptr.restore(dir / "2"), State(2));
  // The chain goes on from a step whose chunks were declared, not hashed.
  ckptr.save(dir / "3", args::StandardSave{State(3)}, DeltaOf(dir / "2"));
  EXPECT_EQ(ckptr.restore(dir / "3"), State(3));
  EXPECT_GT(DeltaInfo(dir / "3")["bytes_shared"].get<uint64_t>(), 256u * 256 * 4 / 2);

  // A declaration the base cannot honour is an error, not a silent full write.
  Tree reshaped = State(4);
  reshaped["frozen"] = Tree(Noise({128, 512}));
  EXPECT_THROW(ckptr.save(dir / "4", args::StandardSave{reshaped, frozen}, DeltaOf(dir / "3")),
               InvalidArgumentError);
  EXPECT_FALSE(fs::exists(dir / "4"));
}

TEST(DeltaSave, MostlyChangedStepIsWrittenInFull) {
  ScratchDir dir;
  Checkpointer ckptr = MakeCheckpointer();
  ckptr.save(dir / "1", args::StandardSave{State(1)}, Full());
  Tree changed = State(2);
  changed["frozen"] = Shifted(Noise({256, 256}));
  ckptr.save(dir / "2", args::StandardSave{changed}, DeltaOf(dir / "1", 0.5));
  EXPECT_EQ(ckptr.restore(dir / "2"), changed);
  const auto delta = DeltaInfo(dir / "2");
  EXPECT_EQ(delta["bytes_shared"], 0u) << delta.dump();
  EXPECT_EQ(LinkedDataFiles(dir / "2"), 0u);
  ExpectVerifies(dir / "2");
}

// A file system without hard links (as object stores are): everything forwarded but HardLink/SupportsHardLinks.
class NoHardLinks final : public FileSystem {
 public:
  std::optional<FileInfo> Stat(const fs::path& path) override { return base_->Stat(path); }
  std::optional<FileInfo> StatNoFollow(const fs::path& path) override { return base_->StatNoFollow(path); }
  void CreateDir(const fs::path& path, std::optional<uint32_t> mode) override { base_->CreateDir(path, mode); }
  std::unique_ptr<WritableFile> NewWritableFile(const fs::path& path) override { return base_->NewWritableFile(path); }
  std::unique_ptr<ReadableFile> OpenForRead(const fs::path& path) override { return base_->OpenForRead(path); }
  std::unique_ptr<ReadableFile> OpenForReadBelow(const fs::path& root, const fs::path& relative) override {
    return base_->OpenForReadBelow(root, relative);
  }
  std::vector<std::string> ListDir(const fs::path& path) override { return base_->ListDir(path); }
  void Rename(const fs::path& from, const fs::path& to) override { base_->Rename(from, to); }
  void RemoveFile(const fs::path& path) override { base_->RemoveFile(path); }
  void RemoveEmptyDir(const fs::path& path) override { base_->RemoveEmptyDir(path); }
  void SyncDir(const fs::path& path) override { base_->SyncDir(path); }

 private:
  const std::shared_ptr<FileSystem> base_ = FileSystem::Default();
};

TEST(DeltaSave, FileSystemsWithoutHardLinksRefuseAndManagersSaveInFull) {
  ScratchDir dir;
  auto no_links = std::make_shared<NoHardLinks>();
  Checkpointer ckptr = MakeCheckpointer(Uncompressed(), no_links);
  ckptr.save(dir / "1", args::StandardSave{State(1)}, Full());
  try {
    ckptr.save(dir / "2", args::StandardSave{State(2)}, DeltaOf(dir / "1"));
    ADD_FAILURE() << "a delta save went through without hard links";
  } catch (const UnimplementedError& e) {
    EXPECT_NE(std::string(e.what()).find("hard links"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(dir / "2"));
  CheckpointManagerOptions options;
  options.save_deltas = true;
  options.enable_async_checkpointing = false;
  options.file_system = no_links;
  CheckpointManager manager(dir / "run", options);
  manager.save(1, args::StandardSave{State(1)});
  manager.save(2, args::StandardSave{State(2)});
  EXPECT_EQ(manager.restore(2), State(2));
  EXPECT_FALSE(fs::exists(dir / "run" / "2" / "default" / metadata::kDeltaDir));
}

TEST(DeltaSave, ItemsWithoutOcdbtAreWrittenInFull) {
  ScratchDir dir;
  PyTreeCheckpointHandlerOptions options;
  options.use_ocdbt = false;
  Checkpointer ckptr = MakeCheckpointer(options);
  ckptr.save(dir / "1", args::StandardSave{State(1)}, Full());
  ckptr.save(dir / "2", args::StandardSave{State(2)}, DeltaOf(dir / "1"));
  fs::remove_all(dir / "1");
  EXPECT_EQ(ckptr.restore(dir / "2"), State(2));
  EXPECT_FALSE(fs::exists(dir / "2" / metadata::kDeltaDir));
}

TEST(DeltaSave, ManagerSavesDeltasAgainstTheLatestKeptStep) {
  ScratchDir dir;
  CheckpointManagerOptions options;
  options.save_deltas = true;
  options.max_to_keep = 3;
  {
    CheckpointManager manager(dir.path(), options);
    for (int step = 0; step < 6; ++step) manager.save(step, args::StandardSave{State(step)});
    manager.wait_until_finished();
    EXPECT_EQ(manager.all_steps(), (std::vector<int64_t>{3, 4, 5}));
    for (int64_t step : manager.all_steps()) {
      EXPECT_EQ(manager.restore(step)["frozen"], State(0)["frozen"]);
      EXPECT_EQ(manager.restore(step)["adapter"], State(static_cast<int>(step))["adapter"]);
      const auto delta = DeltaInfo(dir / std::to_string(step) / "default");
      EXPECT_GT(delta["bytes_shared"].get<uint64_t>(), 10 * delta["bytes_written"].get<uint64_t>()) << delta.dump();
    }
    // Everything changes: more than delta_max_changed_fraction, so the step is full.
    Tree changed = State(6);
    changed["frozen"] = Shifted(Noise({256, 256}));
    changed["twin"] = Shifted(Noise({64, 64}));
    manager.save(6, args::StandardSave{changed});
    manager.wait_until_finished();
    EXPECT_EQ(DeltaInfo(dir / "6" / "default")["bytes_shared"], 0u);
    EXPECT_EQ(manager.restore(6), changed);
  }
  // Disk use: the frozen data once (plus each step's own small writes), not once per step.
  std::set<std::pair<dev_t, ino_t>> seen;
  uint64_t disk = 0;
  for (const auto& entry : fs::recursive_directory_iterator(dir.path())) {
    struct stat st;
    if (!entry.is_regular_file() || ::stat(entry.path().c_str(), &st) != 0) continue;
    if (seen.insert({st.st_dev, st.st_ino}).second) disk += static_cast<uint64_t>(st.st_size);
  }
  EXPECT_LT(disk, 3u * 256 * 256 * 4) << "4 steps kept, the frozen array alone is 256 KiB";
}

}  // namespace
}  // namespace cairn

namespace cairn {
namespace {

// `cairn_delta/` records with and without the optional fields (the fuzzer's seeds, fuzz/corpus/delta_record/) decode,
// and survive their own encoding.
TEST(DeltaRecord, OlderAndNewerRecordsDecode) {
  size_t older = 0, newer = 0;
  for (const auto& entry : fs::directory_iterator(CAIRN_SOURCE_DIR "/fuzz/corpus/delta_record")) {
    const auto record = metadata::DecodeDeltaRecord(testing::Slurp(entry.path()), entry.path().string());
    (record.raw_sha256.empty() && record.save_id.empty() ? older : newer) += 1;
    const auto again = metadata::DecodeDeltaRecord(metadata::EncodeDeltaRecord(record), "again");
    EXPECT_EQ(again.sha256, record.sha256);
    EXPECT_EQ(again.raw_sha256, record.raw_sha256);
    EXPECT_EQ(again.raw_crc32c, record.raw_crc32c);
    EXPECT_EQ(again.save_id, record.save_id);
    EXPECT_EQ(again.bytes_shared, record.bytes_shared);
  }
  EXPECT_GE(older, 1u);
  EXPECT_GE(newer, 2u);
  EXPECT_THROW(metadata::DecodeDeltaRecord(R"({"format": "cairn-delta-1", "raw_crc32c": {"k": -1}})", "bad"),
               CorruptionError);
}

}  // namespace
}  // namespace cairn
