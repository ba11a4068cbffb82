// The servers the object-store suites share: one S3 (moto) and one GCS (fake-gcs-server) server for the whole
// test binary, each behind the fault-injecting proxy, started on first use and stopped at exit. The environment
// variables that FileSystem::Default() reads (AWS_ENDPOINT_URL, STORAGE_EMULATOR_HOST, credentials) point at them,
// so `s3://` and `gs://` paths work with no options at all, as they would for a user.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "cairn/object_store.h"
#include "io/objstore/http_client.h"
#include "server_process.h"

namespace cairn::testing {

inline constexpr const char* kBucket = "cairn-test";

inline ServerProcess& Server(const std::string& kind) {
  static std::map<std::string, std::unique_ptr<ServerProcess>> servers;
  auto& server = servers[kind];
  if (!server) {
    server = std::make_unique<ServerProcess>(kind, std::vector<std::string>{kBucket}, /*proxy=*/true);
    if (kind == "s3") {
      ::setenv("AWS_ENDPOINT_URL", server->url().c_str(), 1);
      ::setenv("AWS_ACCESS_KEY_ID", "testing", 1);
      ::setenv("AWS_SECRET_ACCESS_KEY", "testing", 1);
      ::setenv("AWS_REGION", "us-east-1", 1);
    } else {
      ::setenv("STORAGE_EMULATOR_HOST", server->url().c_str(), 1);
    }
  }
  return *server;
}

// "s3" -> "s3", "gcs" -> "gs": the URL scheme of a server kind.
inline std::string SchemeOf(const std::string& kind) { return kind == "s3" ? "s3" : "gs"; }

inline std::shared_ptr<FileSystem> NewFileSystemFor(const std::string& kind, ObjectStoreOptions options) {
  return kind == "s3" ? NewS3FileSystem(std::move(options)) : NewGcsFileSystem(std::move(options));
}

// A prefix no other test uses: `<scheme>://cairn-test/<suite>.<test>.<n>`.
inline std::string UniqueUrl(const std::string& kind) {
  static std::atomic<int> counter{0};
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = std::string(info->test_suite_name()) + "." + info->name();
  for (char& c : name) c = (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-') ? c : '_';
  return SchemeOf(kind) + "://" + kBucket + "/" + name + "." + std::to_string(counter++);
}

// Tells the proxy in front of `kind`'s server to fail the next `count` requests matching `match` ("PUT", "GET /x",
// ...) in `mode` (status, drop, stall, truncate; see servers.py).
inline void InjectFault(const std::string& kind, const std::string& mode, int count, const std::string& match = "",
                        int status = 503, double seconds = 0) {
  io::objstore::HttpClient http(io::objstore::HttpOptions{});
  const std::string body = "{\"mode\":\"" + mode + "\",\"count\":" + std::to_string(count) + ",\"match\":\"" + match +
                           "\",\"status\":" + std::to_string(status) + ",\"seconds\":" + std::to_string(seconds) + "}";
  io::objstore::HttpRequest request;
  request.method = "POST";
  request.url = Server(kind).control_url() + "/fault";
  request.body = body;
  if (http.Send(request).status != 200) throw std::runtime_error("the fault proxy refused " + body);
}

// How many injected faults the proxy has carried out since the last ClearFaults.
inline int FaultsFired(const std::string& kind) {
  io::objstore::HttpClient http(io::objstore::HttpOptions{});
  io::objstore::HttpRequest request;
  request.url = Server(kind).control_url() + "/stats";
  return nlohmann::json::parse(http.Send(request).body).at("faults").get<int>();
}

inline void ClearFaults(const std::string& kind) {
  io::objstore::HttpClient http(io::objstore::HttpOptions{});
  io::objstore::HttpRequest request;
  request.method = "POST";
  request.url = Server(kind).control_url() + "/reset";
  http.Send(request);
}

}  // namespace cairn::testing
