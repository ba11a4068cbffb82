// cairn_objstore_bench: cairn's save and restore throughput against an object store, with request counts; the C++
// half of bench/objstore.py, which starts the loopback servers and runs boto3 and TensorStore on the same bytes.
//
//   cairn_objstore_bench s3|gcs ENDPOINT URL SIZE_MIB ARRAYS REPS
//
// Saves a state of ARRAYS uint32 arrays (SIZE_MIB in all, deterministic bytes) to URL with a Checkpointer
// (OCDBT, uncompressed: the bytes are what is measured) REPS times, restoring it after each save, and prints one
// JSON object: best seconds and MiB/s of each, and the requests and bytes each sent.
#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "cairn/cairn.h"

namespace {

using Clock = std::chrono::steady_clock;

cairn::Tree State(int64_t size_mib, int arrays) {
  std::vector<cairn::Tree::Item> leaves;
  const int64_t elements = size_mib * (1 << 20) / 4 / arrays;
  uint32_t x = 1;
  for (int i = 0; i < arrays; ++i) {
    cairn::Array a = cairn::Array::Allocate(cairn::DType::kUInt32, {elements});
    for (auto& v : a.mutable_data<uint32_t>()) v = x = x * 1664525u + 1013904223u;
    leaves.emplace_back("layer_" + std::to_string(i), cairn::Tree(std::move(a)));
  }
  return cairn::Tree::Dict(std::move(leaves));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 7) {
    std::cerr << "usage: cairn_objstore_bench s3|gcs ENDPOINT URL SIZE_MIB ARRAYS REPS\n";
    return 2;
  }
  const std::string kind = argv[1];
  cairn::ObjectStoreOptions options;
  options.endpoint = argv[2];
  const std::string url = argv[3];
  const int64_t size_mib = std::stoll(argv[4]);
  const int arrays = std::stoi(argv[5]);
  const int reps = std::stoi(argv[6]);

  auto fs = kind == "s3" ? cairn::NewS3FileSystem(options) : cairn::NewGcsFileSystem(options);
  cairn::PyTreeCheckpointHandlerOptions layout;
  layout.use_compression = false;
  cairn::CheckpointerOptions ckpt_options;
  ckpt_options.file_system = fs;
  cairn::Checkpointer ckptr(std::make_unique<cairn::StandardCheckpointHandler>(layout), ckpt_options);
  const cairn::Tree state = State(size_mib, arrays);

  double best_save = 1e30, best_restore = 1e30;
  cairn::ObjectStoreStats save_stats{}, restore_stats{};
  for (int rep = 0; rep < reps; ++rep) {
    const std::string dir = url + "/" + std::to_string(rep);
    auto before = *cairn::GetObjectStoreStats(*fs);
    auto t0 = Clock::now();
    ckptr.save(dir, cairn::args::StandardSave{state});
    const double save_s = std::chrono::duration<double>(Clock::now() - t0).count();
    auto middle = *cairn::GetObjectStoreStats(*fs);
    t0 = Clock::now();
    cairn::Tree back = ckptr.restore(dir);
    const double restore_s = std::chrono::duration<double>(Clock::now() - t0).count();
    auto after = *cairn::GetObjectStoreStats(*fs);
    if (!(back == state)) {
      std::cerr << "restored state differs\n";
      return 1;
    }
    if (save_s < best_save) {
      best_save = save_s;
      save_stats = {middle.requests - before.requests, middle.retries - before.retries,
                    middle.bytes_sent - before.bytes_sent, middle.bytes_received - before.bytes_received};
    }
    if (restore_s < best_restore) {
      best_restore = restore_s;
      restore_stats = {after.requests - middle.requests, after.retries - middle.retries,
                       after.bytes_sent - middle.bytes_sent, after.bytes_received - middle.bytes_received};
    }
    fs->RemoveAll(dir);
  }
  nlohmann::json out = {{"save_s", best_save},
                        {"save_mib_s", static_cast<double>(size_mib) / best_save},
                        {"save_requests", save_stats.requests},
                        {"save_bytes_sent", save_stats.bytes_sent},
                        {"restore_s", best_restore},
                        {"restore_mib_s", static_cast<double>(size_mib) / best_restore},
                        {"restore_requests", restore_stats.requests},
                        {"restore_bytes_received", restore_stats.bytes_received}};
  std::cout << out.dump() << "\n";
  return 0;
}
