#include "kvstore/ocdbt/data_file_writer.h"

#include "cairn/error.h"
#include "kvstore/ocdbt/random_id.h"

namespace cairn::kvstore::ocdbt {

DataFileWriter::DataFileWriter(std::shared_ptr<FileSystem> fs, std::filesystem::path db_dir, Options options)
    : fs_(std::move(fs)), db_dir_(std::move(db_dir)), options_(std::move(options)) {
  if (options_.target_file_size == 0) throw InvalidArgumentError("OCDBT target data file size must be positive");
}

DataFileWriter::~DataFileWriter() {
  std::lock_guard lock(mu_);
  file_.reset();  // WritableFile's destructor closes without throwing; unflushed buffered bytes are dropped
}

void DataFileWriter::StartFileLocked() {
  if (!dir_created_) {
    fs_->CreateDirs(db_dir_ / options_.relative_dir);
    dir_created_ = true;
  }
  file_id_ = DataFileId{"", options_.relative_dir + ToLowerHex(RandomId128())};
  file_ = fs_->NewWritableFile(PathOf(file_id_));
  file_size_ = flushed_size_ = 0;
}

void DataFileWriter::FlushBufferLocked() {
  if (buffer_.empty()) return;
  file_->Append(buffer_);
  flushed_size_ += buffer_.size();
  buffer_.clear();
}

void DataFileWriter::CloseFileLocked() {
  if (!file_) return;
  FlushBufferLocked();
  file_->Sync();
  file_->Close();
  file_.reset();
}

IndirectRef DataFileWriter::Append(std::string_view data) {
  if (data.empty()) throw InvalidArgumentError("cannot append an empty piece to an OCDBT data file");
  std::lock_guard lock(mu_);
  // Roll over before a piece would push the file past the target, unless the file is empty (a single piece larger
  // than the target still needs a home).
  if (file_ && file_size_ > 0 && file_size_ + data.size() > options_.target_file_size) CloseFileLocked();
  if (!file_) StartFileLocked();
  IndirectRef ref{file_id_, file_size_, data.size()};
  if (data.size() >= options_.buffer_bytes) {
    // Large pieces go straight to the file: copying them through the buffer would only add a memcpy.
    FlushBufferLocked();
    file_->Append(data);
    flushed_size_ += data.size();
  } else {
    if (buffer_.capacity() < options_.buffer_bytes) buffer_.reserve(options_.buffer_bytes);
    buffer_.append(data);
    if (buffer_.size() >= options_.buffer_bytes) FlushBufferLocked();
  }
  file_size_ += data.size();
  total_appended_ += data.size();
  return ref;
}

std::string DataFileWriter::Read(const IndirectRef& ref) {
  std::string out(ref.length, '\0');
  {
    std::lock_guard lock(mu_);
    if (file_ && ref.file == file_id_ && ref.offset >= flushed_size_) {
      // Still in the buffer: pieces are flushed whole, so it lies entirely inside.
      if (ref.offset + ref.length > file_size_) throw InvalidArgumentError("read past the appended data");
      buffer_.copy(out.data(), ref.length, ref.offset - flushed_size_);
      return out;
    }
  }
  // Open afresh each time: the file may still be growing, and some file systems snapshot a file at open.
  auto file = fs_->OpenForRead(PathOf(ref.file));
  if (!out.empty()) file->ReadAt(ref.offset, out.size(), out.data());
  return out;
}

void DataFileWriter::Finish() {
  std::lock_guard lock(mu_);
  CloseFileLocked();
  if (dir_created_) {
    fs_->SyncDir(db_dir_ / options_.relative_dir);
    fs_->SyncDir(db_dir_);
  }
}

bool DataFileWriter::IsCurrentFile(const DataFileId& file) const {
  std::lock_guard lock(mu_);
  return file_ && file == file_id_;
}

uint64_t DataFileWriter::bytes_appended() const {
  std::lock_guard lock(mu_);
  return total_appended_;
}

}  // namespace cairn::kvstore::ocdbt
