// Checkpoints on object storage: `s3://bucket/prefix` and `gs://bucket/prefix` are accepted wherever cairn takes a
// directory. FileSystem::Default() routes such paths to a file system over the service, configured from the
// environment as the service's own tools are (AWS_* variables and ~/.aws files; GOOGLE_APPLICATION_CREDENTIALS, the
// metadata server, STORAGE_EMULATOR_HOST). NewS3FileSystem / NewGcsFileSystem build one with explicit options, to
// pass as CheckpointerOptions::file_system or CheckpointManagerOptions::file_system.
//
// Object stores have no rename: directories are key prefixes (with an empty `<dir>/` marker object written by
// CreateDir), and a checkpoint counts once its `commit_success.txt` exists (Orbax's commit-file protocol), which
// the checkpointers and the manager switch to by themselves on such a file system. See docs/storage.md.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "cairn/file_system.h"

namespace cairn {

// Retries of one request on 408, 429, 5xx and broken connections: exponential backoff with full jitter.
struct RetryOptions {
  int max_attempts = 8;
  std::chrono::milliseconds initial_backoff{50};
  std::chrono::milliseconds max_backoff{5000};
};

struct ObjectStoreOptions {
  // Base URL of the service, e.g. "http://127.0.0.1:9000". Empty: from the environment (AWS_ENDPOINT_URL_S3,
  // AWS_ENDPOINT_URL; STORAGE_EMULATOR_HOST), else the service's public endpoint.
  std::string endpoint;
  // S3 only: the signing region. Empty: AWS_REGION, AWS_DEFAULT_REGION, the profile's region, else us-east-1.
  std::string region;
  // S3 only: the profile in ~/.aws/credentials and ~/.aws/config. Empty: AWS_PROFILE, else "default".
  std::string profile;
  // Send no credentials (public buckets, emulators). GCS is anonymous by itself when STORAGE_EMULATOR_HOST is set.
  bool anonymous = false;
  // GCS only: a service-account key file. Empty: GOOGLE_APPLICATION_CREDENTIALS, else the metadata server.
  std::string gcs_credentials_file;

  // Requests in flight at once, over every file of this file system.
  int max_concurrent_requests = 32;
  // Files are uploaded in parts of this size (S3 multipart, GCS resumable); a smaller file is one request. At
  // least 5 MiB (S3's minimum part) and a multiple of 256 KiB (GCS's chunk granule). Memory held by one file being
  // written is at most about two parts.
  size_t part_size = 16u << 20;
  // Entries a listing asks for per page (S3's and GCS's own maximum is 1,000).
  int list_page_size = 1000;
  // Per request: connecting, and the whole request; a request moving under 1 KiB/s for stall_timeout is
  // abandoned (and retried).
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds request_timeout{300'000};
  std::chrono::seconds stall_timeout{20};
  RetryOptions retry;
};

// Counts since the file system was made, for benchmarks and cost estimates.
struct ObjectStoreStats {
  uint64_t requests = 0;  // HTTP requests sent, retries included
  uint64_t retries = 0;
  uint64_t bytes_sent = 0;
  uint64_t bytes_received = 0;
};

std::shared_ptr<FileSystem> NewS3FileSystem(ObjectStoreOptions options = {});
std::shared_ptr<FileSystem> NewGcsFileSystem(ObjectStoreOptions options = {});

// The counters of a file system made by NewS3FileSystem / NewGcsFileSystem (or the one FileSystem::Default()
// uses for `url`'s scheme); nullopt for any other file system.
std::optional<ObjectStoreStats> GetObjectStoreStats(FileSystem& fs);

// "s3://..." or "gs://..." (also in the one-slash form "s3:/..." that path normalisation leaves).
bool IsObjectStoreUrl(std::string_view path);

}  // namespace cairn
