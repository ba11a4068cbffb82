#include "io/objstore/object_store_file_system.h"

#include <algorithm>
#include <cerrno>
#include <future>
#include <utility>

#include "cairn/error.h"

namespace cairn::io::objstore {
namespace {

std::string DirPrefix(const std::string& key) { return key.empty() ? "" : key + "/"; }

std::string Url(std::string_view scheme, const ObjectPath& p) {
  return std::string(scheme) + "://" + p.bucket + (p.key.empty() ? "" : "/" + p.key);
}

// Appends become parts of ObjectStoreOptions::part_size; a file that never fills one is a single PUT at Close.
// A part that fills the buffer goes up in the background while the next one fills (one part in flight per file, so
// a file holds at most two parts of memory), so the threads encoding a checkpoint do not wait on the network part
// by part. Nothing is visible until Close returns, and a file dropped without Close leaves nothing behind, so a
// failed save never leaves a torn object under its final name.
class ObjectWritableFile final : public WritableFile {
 public:
  ObjectWritableFile(ObjectStore& store, ObjectPath where)
      : store_(store), where_(std::move(where)), part_size_(std::max<size_t>(store.options().part_size, 1)) {}
  ~ObjectWritableFile() override {
    if (in_flight_.valid()) in_flight_.wait();
    if (upload_ && !closed_) upload_->Abort();
  }

  void Append(std::string_view data) override {
    RequireOpen();
    while (!data.empty()) {
      if (buffer_.empty() && data.size() >= part_size_) {
        // A whole part straight from the caller's memory (a staging buffer), without copying it: sent before
        // Append returns, since the caller may reuse its memory then.
        WaitForPartInFlight();
        Upload& upload = StartedUpload();
        upload.WritePart(data.substr(0, part_size_));
        data.remove_prefix(part_size_);
        continue;
      }
      const size_t take = std::min(part_size_ - buffer_.size(), data.size());
      buffer_.append(data.substr(0, take));
      data.remove_prefix(take);
      if (buffer_.size() == part_size_) {
        WaitForPartInFlight();
        in_flight_ = std::async(std::launch::async, [this, part = std::exchange(buffer_, std::string())] {
          StartedUpload().WritePart(part);
        });
        buffer_.reserve(part_size_);
      }
    }
  }

  // Durability comes with Close: an object exists whole or not at all. The commit protocol writes its marker only
  // after every other file is closed, which is the ordering it needs.
  void Sync() override { RequireOpen(); }

  void Close() override {
    if (closed_) return;
    WaitForPartInFlight();
    closed_ = true;
    if (upload_) {
      upload_->Finish(buffer_);
    } else {
      store_.Put(where_.bucket, where_.key, buffer_);
    }
    std::string().swap(buffer_);
  }

 private:
  void RequireOpen() const {
    if (closed_) throw InvalidArgumentError("write to closed file " + Url(store_.scheme(), where_));
  }
  // Rethrows the background part's failure. Only one thread touches upload_ at a time: the background part's,
  // or the caller's once this returns.
  void WaitForPartInFlight() {
    if (in_flight_.valid()) in_flight_.get();
  }
  Upload& StartedUpload() {
    if (!upload_) upload_ = store_.StartUpload(where_.bucket, where_.key);
    return *upload_;
  }

  ObjectStore& store_;
  ObjectPath where_;
  size_t part_size_;
  std::string buffer_;
  std::unique_ptr<Upload> upload_;
  std::future<void> in_flight_;  // the part going up in the background, if any
  bool closed_ = false;
};

class ObjectReadableFile final : public ReadableFile {
 public:
  ObjectReadableFile(ObjectStore& store, ObjectPath where, uint64_t size)
      : store_(store), where_(std::move(where)), size_(size) {}
  uint64_t Size() const override { return size_; }
  void ReadAt(uint64_t offset, size_t length, char* out) const override {
    if (offset + length > size_) {
      throw CorruptionError("read past the end of " + Url(store_.scheme(), where_) + ": " + std::to_string(length) +
                            " bytes at offset " + std::to_string(offset) + " of " + std::to_string(size_));
    }
    store_.Get(where_.bucket, where_.key, offset, length, out);
  }

 private:
  ObjectStore& store_;
  ObjectPath where_;
  uint64_t size_;
};

}  // namespace

ObjectPath ParseObjectPath(std::string_view scheme, const std::filesystem::path& path) {
  const std::string text = path.string();
  const std::string head = std::string(scheme) + ":";
  if (!text.starts_with(head)) {
    throw InvalidArgumentError(text + " is not a " + std::string(scheme) + ":// path");
  }
  // Split on '/', dropping empty and "." segments and resolving ".." (what lexically_normal does for files).
  std::vector<std::string> parts;
  size_t pos = head.size();
  while (pos <= text.size()) {
    size_t next = text.find('/', pos);
    if (next == std::string::npos) next = text.size();
    std::string segment = text.substr(pos, next - pos);
    if (segment == "..") {
      if (parts.size() > 1) parts.pop_back();
    } else if (!segment.empty() && segment != ".") {
      parts.push_back(std::move(segment));
    }
    pos = next + 1;
  }
  ObjectPath out;
  if (parts.empty()) return out;
  out.bucket = parts[0];
  for (size_t i = 1; i < parts.size(); ++i) out.key += (i > 1 ? "/" : "") + parts[i];
  return out;
}

std::filesystem::path NormalizeObjectUrl(const std::filesystem::path& url) {
  const std::string text = url.string();
  const std::string scheme = text.substr(0, text.find(':'));
  const ObjectPath p = ParseObjectPath(scheme, url);
  return Url(scheme, p);
}

std::optional<FileInfo> ObjectStoreFileSystem::Stat(const std::filesystem::path& path) {
  const ObjectPath p = Parse(path);
  if (p.key.empty()) return FileInfo{true, 0};  // a bucket (or the scheme's root) is a directory
  if (auto size = store_->Head(p.bucket, p.key)) return FileInfo{false, *size};
  // A directory: its marker, or any object below it (written by a tool that makes no markers).
  if (!store_->List(p.bucket, DirPrefix(p.key), /*delimited=*/false, /*max_keys=*/1).objects.empty()) {
    return FileInfo{true, 0};
  }
  return std::nullopt;
}

void ObjectStoreFileSystem::CreateDir(const std::filesystem::path& path, std::optional<uint32_t>) {
  const ObjectPath p = Parse(path);
  if (p.key.empty()) return;
  // Idempotent: the marker may already be there, and no parent need exist first. Existence is not checked (two
  // more requests for every directory); the callers' CreateDirs already did.
  store_->Put(p.bucket, DirPrefix(p.key), "");
}

std::unique_ptr<WritableFile> ObjectStoreFileSystem::NewWritableFile(const std::filesystem::path& path) {
  ObjectPath p = Parse(path);
  if (p.key.empty()) throw InvalidArgumentError("cannot write a file at the bucket root " + path.string());
  return std::make_unique<ObjectWritableFile>(*store_, std::move(p));
}

std::unique_ptr<ReadableFile> ObjectStoreFileSystem::OpenForRead(const std::filesystem::path& path) {
  ObjectPath p = Parse(path);
  auto size = p.key.empty() ? std::nullopt : store_->Head(p.bucket, p.key);
  if (!size) throw NotFoundError("open " + Url(store_->scheme(), p) + ": no such object");
  return std::make_unique<ObjectReadableFile>(*store_, std::move(p), *size);
}

std::vector<std::string> ObjectStoreFileSystem::ListDir(const std::filesystem::path& path) {
  const ObjectPath p = Parse(path);
  if (p.bucket.empty()) throw UnimplementedError("listing the buckets of " + path.string() + " is not supported");
  const std::string prefix = DirPrefix(p.key);
  ListResult listed = store_->List(p.bucket, prefix, /*delimited=*/true);
  bool exists = p.key.empty();
  std::vector<std::string> names;
  for (const auto& object : listed.objects) {
    exists = true;
    std::string name = object.key.substr(prefix.size());
    if (!name.empty()) names.push_back(std::move(name));  // the empty name is the directory's own marker
  }
  for (const auto& sub : listed.prefixes) {
    exists = true;
    std::string name = sub.substr(prefix.size());
    while (!name.empty() && name.back() == '/') name.pop_back();
    if (!name.empty()) names.push_back(std::move(name));
  }
  if (!exists) {
    if (store_->Head(p.bucket, p.key)) throw IoError("list directory " + path.string(), ENOTDIR);
    throw NotFoundError("list directory " + path.string() + ": no such directory");
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

void ObjectStoreFileSystem::Rename(const std::filesystem::path& from, const std::filesystem::path& to) {
  const ObjectPath src = Parse(from), dst = Parse(to);
  if (src.bucket != dst.bucket || src.key.empty() || dst.key.empty() || !store_->Head(src.bucket, src.key)) {
    // Only a single object can move (and then not atomically with anything else); a directory would be a copy of
    // every object, which is what the commit-file protocol avoids.
    throw UnimplementedError("rename " + from.string() + " to " + to.string() +
                             ": an object store renames single objects within a bucket only");
  }
  store_->Copy(src.bucket, src.key, dst.bucket, dst.key);
  store_->Delete(src.bucket, {src.key});
}

void ObjectStoreFileSystem::CopyFile(const std::filesystem::path& existing, const std::filesystem::path& destination) {
  const ObjectPath src = Parse(existing), dst = Parse(destination);
  if (src.key.empty() || dst.key.empty()) {
    throw InvalidArgumentError("copy " + existing.string() + " to " + destination.string() + ": not a file");
  }
  store_->Copy(src.bucket, src.key, dst.bucket, dst.key);
}

void ObjectStoreFileSystem::RemoveFile(const std::filesystem::path& path) {
  const ObjectPath p = Parse(path);
  if (p.key.empty()) throw InvalidArgumentError("remove " + path.string() + ": not a file");
  store_->Delete(p.bucket, {p.key});
}

void ObjectStoreFileSystem::RemoveEmptyDir(const std::filesystem::path& path) {
  const ObjectPath p = Parse(path);
  if (p.key.empty()) return;  // buckets are not removed
  store_->Delete(p.bucket, {DirPrefix(p.key)});
}

void ObjectStoreFileSystem::SyncDir(const std::filesystem::path&) {
  // Nothing to do: a closed object is durable, and there are no directory entries to sync.
}

void ObjectStoreFileSystem::RemoveAll(const std::filesystem::path& path) {
  const ObjectPath p = Parse(path);
  if (p.key.empty()) throw InvalidArgumentError("refusing to remove everything in " + path.string());
  std::vector<std::string> keys;
  for (auto& object : store_->List(p.bucket, DirPrefix(p.key), /*delimited=*/false).objects) {
    keys.push_back(std::move(object.key));
  }
  if (store_->Head(p.bucket, p.key)) keys.push_back(p.key);
  store_->Delete(p.bucket, keys);
}

}  // namespace cairn::io::objstore
