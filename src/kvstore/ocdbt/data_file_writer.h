// Appends raw values and encoded nodes to a database's data files (`<dir>/d/<32 hex>`), handing back where each
// piece landed. Writes are buffered and issued in large sequential pieces (one syscall per buffer, never one per
// small value); a new file starts once the current one would pass the target size. Thread-safe.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/file_system.h"
#include "kvstore/ocdbt/indirect_ref.h"

namespace cairn::kvstore::ocdbt {

class DataFileWriter {
 public:
  struct Options {
    std::string relative_dir = "d/";                // data files go to <db_dir>/<relative_dir><32 hex>
    uint64_t target_file_size = uint64_t{2} << 30;  // Orbax's target_data_file_size for local file systems
    size_t buffer_bytes = size_t{4} << 20;
  };

  DataFileWriter(std::shared_ptr<FileSystem> fs, std::filesystem::path db_dir, Options options);
  ~DataFileWriter();  // closes open files without throwing; call Finish() to make them durable
  DataFileWriter(const DataFileWriter&) = delete;
  DataFileWriter& operator=(const DataFileWriter&) = delete;

  // Appends `data` (non-empty) and returns its location; the DataFileId's base_path is "".
  IndirectRef Append(std::string_view data);
  // Reads back bytes appended earlier, whether still buffered or already written.
  std::string Read(const IndirectRef& ref);
  // Writes out the buffer, fsyncs and closes every file, and fsyncs the data directory. Appending after Finish
  // starts a new file.
  void Finish();
  // True when `file` is the file this writer is appending to now (its tail may still be in the buffer).
  bool IsCurrentFile(const DataFileId& file) const;
  // Bytes appended so far, over all files.
  uint64_t bytes_appended() const;

 private:
  std::filesystem::path PathOf(const DataFileId& id) const { return db_dir_ / id.FullPath(); }
  void StartFileLocked();
  void FlushBufferLocked();
  void CloseFileLocked();

  const std::shared_ptr<FileSystem> fs_;
  const std::filesystem::path db_dir_;
  const Options options_;

  mutable std::mutex mu_;
  bool dir_created_ = false;
  std::unique_ptr<WritableFile> file_;  // the file being appended to, if any
  DataFileId file_id_;
  uint64_t file_size_ = 0;     // bytes appended to the current file, buffered ones included
  uint64_t flushed_size_ = 0;  // bytes of the current file already handed to the file system
  std::string buffer_;
  uint64_t total_appended_ = 0;
};

}  // namespace cairn::kvstore::ocdbt
