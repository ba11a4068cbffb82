// Orbax's standard step naming: which directory names are steps, and which directories count as finished.
#include "manager/step_name.h"

#include <gtest/gtest.h>

#include "cairn/error.h"

namespace cairn::manager {
namespace {

TEST(StepNameFormat, Builds) {
  EXPECT_EQ(StepNameFormat().Build(23), "23");
  EXPECT_EQ(StepNameFormat(std::nullopt, 4).Build(23), "0023");
  EXPECT_EQ(StepNameFormat("step").Build(23), "step_23");
  EXPECT_EQ(StepNameFormat("step", 4).Build(23), "step_0023");
  EXPECT_EQ(StepNameFormat("step", 4).Build(123456), "step_123456");
  EXPECT_EQ(StepNameFormat(std::nullopt, 0).Build(7), "7");
  EXPECT_EQ(StepNameFormat("").Build(7), "_7");
  EXPECT_THROW(StepNameFormat().Build(-1), InvalidArgumentError);
  EXPECT_THROW(StepNameFormat("a/b"), InvalidArgumentError);
  EXPECT_THROW(StepNameFormat(std::nullopt, -1), InvalidArgumentError);
}

TEST(StepNameFormat, ParsesOnlyOrbaxsNames) {
  StepNameFormat plain;
  EXPECT_EQ(plain.Parse("0"), 0);
  EXPECT_EQ(plain.Parse("23"), 23);
  EXPECT_EQ(plain.Parse("9223372036854775807"), INT64_MAX);
  for (const char* bad : {"", "023", "00", "-1", "23a", "a23", "step_23", "23.orbax-checkpoint-tmp",
                          "23.orbax-checkpoint-tmp-5", "metadata", "9223372036854775808"}) {
    EXPECT_EQ(plain.Parse(bad), std::nullopt) << bad;
  }
  StepNameFormat padded("step", 4);
  EXPECT_EQ(padded.Parse("step_0023"), 23);
  EXPECT_EQ(padded.Parse("step_0000"), 0);
  EXPECT_EQ(padded.Parse("step_1234"), 1234);
  EXPECT_EQ(padded.Parse("step_12345"), 12345);
  for (const char* bad : {"step_23", "step_023", "step_00023", "0023", "step0023", "steps_0023", "step_"}) {
    EXPECT_EQ(padded.Parse(bad), std::nullopt) << bad;
  }
  // Every step has exactly one name, and it parses back.
  for (int64_t step : {0, 1, 9, 10, 999, 1000, 123456}) {
    EXPECT_EQ(padded.Parse(padded.Build(step)), step);
    EXPECT_EQ(plain.Parse(plain.Build(step)), step);
  }
}

TEST(StepNameFormat, FinishedAndUnfinishedSteps) {
  auto fs = NewInMemoryFileSystem();
  fs->CreateDirs("/root/1");
  fs->CreateDirs("/root/2");
  fs->WriteFile("/root/2/commit_success.txt", "ok");
  fs->CreateDirs("/root/3.orbax-checkpoint-tmp");
  fs->CreateDirs("/root/4.orbax-checkpoint-tmp-1234");
  fs->WriteFile("/root/5", "a file");
  fs->CreateDirs("/root/metadata");
  const AtomicityOptions rename{};
  const AtomicityOptions commit_file{.mode = AtomicityMode::kCommitFile};
  const AtomicityOptions legacy{.mode = AtomicityMode::kCommitFile, .allow_legacy_atomic_rename = true};
  EXPECT_TRUE(IsFinalizedStep(*fs, "/root/1", rename));
  EXPECT_TRUE(IsFinalizedStep(*fs, "/root/2", rename));
  EXPECT_FALSE(IsFinalizedStep(*fs, "/root/3.orbax-checkpoint-tmp", rename));
  EXPECT_FALSE(IsFinalizedStep(*fs, "/root/5", rename));
  EXPECT_FALSE(IsFinalizedStep(*fs, "/root/6", rename));
  EXPECT_FALSE(IsFinalizedStep(*fs, "/root/1", commit_file));
  EXPECT_TRUE(IsFinalizedStep(*fs, "/root/2", commit_file));
  EXPECT_TRUE(IsFinalizedStep(*fs, "/root/1", legacy));

  StepNameFormat format;
  EXPECT_TRUE(IsUnfinishedStep(*fs, "/root", "3.orbax-checkpoint-tmp", format, rename));
  EXPECT_TRUE(IsUnfinishedStep(*fs, "/root", "4.orbax-checkpoint-tmp-1234", format, rename));
  EXPECT_FALSE(IsUnfinishedStep(*fs, "/root", "1", format, rename));
  EXPECT_TRUE(IsUnfinishedStep(*fs, "/root", "1", format, commit_file));
  EXPECT_FALSE(IsUnfinishedStep(*fs, "/root", "2", format, commit_file));
  EXPECT_FALSE(IsUnfinishedStep(*fs, "/root", "metadata", format, commit_file));  // not named like a step
  EXPECT_FALSE(IsUnfinishedStep(*fs, "/root", "1", format, legacy));
}

}  // namespace
}  // namespace cairn::manager
