// What a checkpoint needs from an object store, and no more: whole-object puts, ranged gets, listing by prefix,
// batched deletes, server-side copies and uploads in parts. One driver per service (s3_store.cc, gcs_store.cc)
// implements it over HttpClient and RetryPolicy; ObjectStoreFileSystem turns it into a FileSystem.
//
// Errors: NotFoundError for a missing object or bucket, IoError (EACCES for 401/403, EIO otherwise) for a refused
// request, each naming the URL; TimeoutError when retries ran out on timeouts.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/object_store.h"

namespace cairn::io::objstore {

struct ListEntry {
  std::string key;
  uint64_t size = 0;
};

struct ListResult {
  std::vector<ListEntry> objects;     // keys directly under the prefix (all keys below it without a delimiter)
  std::vector<std::string> prefixes;  // with a delimiter: the "sub-directories", each ending in the delimiter
};

// One object written in parts, in order. Nothing is visible under the key until Finish returns; Abort (or
// destruction without Finish) leaves nothing behind.
class Upload {
 public:
  virtual ~Upload() = default;
  // Every part but the last is exactly ObjectStoreOptions::part_size bytes.
  virtual void WritePart(std::string_view data) = 0;
  virtual void Finish(std::string_view last_part) = 0;
  virtual void Abort() noexcept = 0;
};

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;

  virtual std::string_view scheme() const = 0;  // "s3" or "gs"
  virtual const ObjectStoreOptions& options() const = 0;

  virtual void Put(const std::string& bucket, const std::string& key, std::string_view data) = 0;
  // The object's size, or nullopt when there is none.
  virtual std::optional<uint64_t> Head(const std::string& bucket, const std::string& key) = 0;
  // Exactly `length` bytes at `offset` into `out`; a shorter object is a CorruptionError.
  virtual void Get(const std::string& bucket, const std::string& key, uint64_t offset, size_t length, char* out) = 0;
  // Every page. With a delimiter, keys containing it after the prefix are folded into `prefixes`. `max_keys` > 0
  // stops after the first page of at most that many entries (an existence check).
  virtual ListResult List(const std::string& bucket, const std::string& prefix, bool delimited, int max_keys = 0) = 0;
  // Deletes the keys, batched where the service can (S3: 1,000 per request); keys that do not exist are fine.
  virtual void Delete(const std::string& bucket, const std::vector<std::string>& keys) = 0;
  // A server-side copy of the object `from_bucket`/`from` to `to_bucket`/`to` (replacing what is there): the bytes
  // never pass through this process, and the copy is an object of its own (deleting the source leaves it whole).
  // NotFoundError when the source does not exist.
  virtual void Copy(const std::string& from_bucket, const std::string& from, const std::string& to_bucket,
                    const std::string& to) = 0;
  virtual std::unique_ptr<Upload> StartUpload(const std::string& bucket, const std::string& key) = 0;

  virtual ObjectStoreStats Stats() const = 0;
};

// How the drivers list: `page(size, token, result)` asks for one page of at most `size` entries starting at `token`
// ("" for the first), adds them to `result` and returns the next page's token ("" after the last). With
// `max_keys` > 0, one page of that many; otherwise pages of `page_size` until the last.
inline ListResult ListInPages(int max_keys, int page_size,
                              const std::function<std::string(int, const std::string&, ListResult&)>& page) {
  ListResult result;
  std::string token;
  do {
    token = page(max_keys > 0 ? max_keys : page_size, token, result);
  } while (!token.empty() && max_keys <= 0);
  return result;
}

// S3's CopyObject copies at most 5 GiB; a larger object is copied in parts (UploadPartCopy, each part at most
// 5 GiB and at least 5 MiB, at most 10,000 parts).
struct S3CopyLimits {
  uint64_t max_single_copy_bytes = uint64_t{5} << 30;
  uint64_t copy_part_bytes = uint64_t{512} << 20;  // raised as needed to stay within 10,000 parts
};

// `copy_limits` other than the default only in tests (to copy in parts without a 5 GiB object).
std::unique_ptr<ObjectStore> NewS3Store(ObjectStoreOptions options, S3CopyLimits copy_limits = {});
std::unique_ptr<ObjectStore> NewGcsStore(ObjectStoreOptions options);

}  // namespace cairn::io::objstore
