// Where S3 credentials, region and endpoint come from: options, then the environment, then the profile's files,
// in the order of the AWS CLI.
#include "io/objstore/aws_config.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include "cairn/error.h"
#include "test_util.h"

namespace cairn::io::objstore {
namespace {

// Clears every variable ResolveAwsConfig reads and points the files into a temporary directory; restores nothing
// (each test sets what it needs).
class AwsConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                             "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"}) {
      saved_.emplace_back(name, std::getenv(name) ? std::optional<std::string>(std::getenv(name)) : std::nullopt);
      ::unsetenv(name);
    }
    ::setenv("AWS_SHARED_CREDENTIALS_FILE", (dir_ / "credentials").c_str(), 1);
    ::setenv("AWS_CONFIG_FILE", (dir_ / "config").c_str(), 1);
  }
  void TearDown() override {
    ::unsetenv("AWS_SHARED_CREDENTIALS_FILE");
    ::unsetenv("AWS_CONFIG_FILE");
    for (const auto& [name, value] : saved_) {
      if (value) ::setenv(name.c_str(), value->c_str(), 1);
      else ::unsetenv(name.c_str());
    }
  }
  testing::TempDir dir_;
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

TEST_F(AwsConfigTest, EnvironmentFirst) {
  ::setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
  ::setenv("AWS_SECRET_ACCESS_KEY", "secret", 1);
  ::setenv("AWS_SESSION_TOKEN", "token", 1);
  ::setenv("AWS_REGION", "eu-west-3", 1);
  testing::Spit(dir_ / "credentials", "[default]\naws_access_key_id = AKIDFILE\naws_secret_access_key = s\n");
  const AwsConfig config = ResolveAwsConfig({});
  ASSERT_TRUE(config.credentials);
  EXPECT_EQ(config.credentials->access_key_id, "AKIDENV");
  EXPECT_EQ(config.credentials->session_token, "token");
  EXPECT_EQ(config.region, "eu-west-3");
  EXPECT_EQ(config.endpoint, "https://s3.eu-west-3.amazonaws.com");
  EXPECT_FALSE(config.path_style);
}

TEST_F(AwsConfigTest, NamedProfileFromTheFiles) {
  ::setenv("AWS_PROFILE", "training", 1);
  testing::Spit(dir_ / "credentials",
                "# comment\n[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = d\n\n"
                "[training]\naws_access_key_id = AKIDTRAIN\naws_secret_access_key = t\naws_session_token = tok\n");
  testing::Spit(dir_ / "config", "[default]\nregion = us-west-2\n[profile training]\nregion = ap-south-1\n"
                                 "endpoint_url = http://127.0.0.1:9000/\n");
  const AwsConfig config = ResolveAwsConfig({});
  ASSERT_TRUE(config.credentials);
  EXPECT_EQ(config.credentials->access_key_id, "AKIDTRAIN");
  EXPECT_EQ(config.credentials->secret_access_key, "t");
  EXPECT_EQ(config.credentials->session_token, "tok");
  EXPECT_EQ(config.region, "ap-south-1");
  EXPECT_EQ(config.endpoint, "http://127.0.0.1:9000");
  EXPECT_TRUE(config.path_style);
}

TEST_F(AwsConfigTest, OptionsOverrideAndAnonymous) {
  ::setenv("AWS_ENDPOINT_URL", "http://from-env:1", 1);
  ObjectStoreOptions options;
  options.anonymous = true;
  options.region = "us-east-2";
  options.endpoint = "http://127.0.0.1:5555";
  const AwsConfig config = ResolveAwsConfig(options);
  EXPECT_FALSE(config.credentials);
  EXPECT_EQ(config.region, "us-east-2");
  EXPECT_EQ(config.endpoint, "http://127.0.0.1:5555");
}

TEST_F(AwsConfigTest, NoCredentialsIsAClearError) {
  try {
    ResolveAwsConfig({});
    FAIL() << "no error";
  } catch (const InvalidArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("AWS_ACCESS_KEY_ID"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace cairn::io::objstore
