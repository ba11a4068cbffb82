// A loopback object-store server for a test, started from tests/objstore/servers.py with the interop environment's
// Python: moto's S3 or fake-gcs-server, optionally behind the tests' fault-injecting proxy. The server lives as long
// as this object (and dies with the test process: it exits when its standard input closes).
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "cairn/object_store.h"

namespace cairn::testing {

class ServerProcess {
 public:
  // kind: "s3", "gcs" or "token" (see servers.py).
  ServerProcess(const std::string& kind, const std::vector<std::string>& buckets, bool proxy = false,
                const std::vector<std::string>& extra_args = {}) {
    const std::string python = CAIRN_INTEROP_PYTHON;
    if (::access(python.c_str(), X_OK) != 0) {
      throw std::runtime_error("the interop environment's Python " + python +
                               " is missing: run scripts/install-deps.sh");
    }
    std::vector<std::string> args = {python, std::string(CAIRN_SOURCE_DIR) + "/tests/objstore/servers.py", kind};
    for (const auto& bucket : buckets) args.insert(args.end(), {"--bucket", bucket});
    if (proxy) args.push_back("--proxy");
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    int to_child[2], from_child[2];
    if (::pipe(to_child) != 0 || ::pipe(from_child) != 0) throw std::runtime_error("pipe failed");
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(to_child[0], 0);
      ::dup2(from_child[1], 1);
      ::close(to_child[1]);
      ::close(from_child[0]);
      std::vector<char*> argv;
      for (auto& arg : args) argv.push_back(arg.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(to_child[0]);
    ::close(from_child[1]);
    stdin_fd_ = to_child[1];
    FILE* out = ::fdopen(from_child[0], "r");
    char line[1024] = {};
    if (!std::fgets(line, sizeof line, out)) {
      std::fclose(out);
      Stop();
      throw std::runtime_error("the " + kind + " test server did not start (see its output above)");
    }
    std::fclose(out);
    std::istringstream words(line);
    std::string ready;
    words >> ready >> server_url_ >> url_ >> control_url_;
    if (ready != "READY") throw std::runtime_error("unexpected line from servers.py: " + std::string(line));
  }
  ~ServerProcess() { Stop(); }
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  const std::string& url() const { return url_; }                // what cairn talks to (the proxy, if any)
  const std::string& server_url() const { return server_url_; }  // the server itself
  const std::string& control_url() const { return control_url_; }

  // Options for a cairn file system talking to this server, with quick retries.
  ObjectStoreOptions Options() const {
    ObjectStoreOptions options;
    options.endpoint = url_;
    options.region = "us-east-1";
    options.retry.initial_backoff = std::chrono::milliseconds(10);
    options.retry.max_backoff = std::chrono::milliseconds(200);
    return options;
  }

 private:
  void Stop() {
    if (stdin_fd_ >= 0) ::close(stdin_fd_);
    stdin_fd_ = -1;
    if (pid_ > 0) {
      int status = 0;
      // servers.py stops its server when its stdin closes; give it a moment, then insist.
      for (int i = 0; i < 100 && ::waitpid(pid_, &status, WNOHANG) == 0; ++i) ::usleep(50'000);
      if (::waitpid(pid_, &status, WNOHANG) == 0) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
      }
    }
    pid_ = -1;
  }

  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  std::string server_url_, url_, control_url_;
};

}  // namespace cairn::testing
