// Journal: the txn log as append-only segment files, one fdatasync per group commit.
//
// Why not the log in LMDB: an LMDB commit syncs twice (data pages, then the meta page) and
// writes several B-tree pages per txn; a single writer waiting for its ack paid for all of
// it. Here a group of records is one pwrite into a segment whose bytes were written (as
// zeros) when it was created, so the fdatasync that makes the group durable has no file
// size or extent to update: one flush of the data, as ZooKeeper's txn log does.
//
// Files: <dir>/<first zxid, 16 hex digits>.log, each a header then records
//   u32 length | u32 crc32c(length, zxid, payload) | u64 zxid | payload   (little-endian)
// and zeros after the last record. A header of zeros ends a segment.
//
// Recovery: a record that fails its checksum at the end of the newest segment, with nothing
// valid after it, is a write cut short by a crash (never acknowledged: acks follow the
// fdatasync) and is cut off. Anything else that fails (a bad record with valid ones after
// it, or in an older segment) is damage, and open() refuses the journal naming file and
// offset rather than serve a history with a hole in it.
//
// Thread-safety: every method takes the journal's mutex; append() holds it across the sync.
#pragma once

#include <corral/storage.h>

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace corral::lmdb {

class Journal {
 public:
  // warn reports what open() repaired (a torn end cut off).
  Journal(std::string dir, uint64_t segment_bytes, bool fsync,
          std::function<void(const std::string&)> warn);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // Scans every segment, cuts a torn tail off the newest and refuses damage.
  StorageCode open(std::string* error);

  // Highest zxid in the journal (0 when empty).
  uint64_t lastZxid() const;

  // Writes the records (zxids ascending, above lastZxid()) and makes them durable; on
  // failure returns an errno-style code and nothing of this group counts as written.
  int append(const std::vector<std::pair<uint64_t, std::string>>& records, std::string* error);

  // Visits records with zxid > after in order; the visitor returns false to stop.
  StorageCode read(uint64_t after, const std::function<bool(uint64_t, std::string_view)>& visit,
                   std::string* error) const;

  // Drops every record with zxid > zxid, durably.
  StorageCode truncateAfter(uint64_t zxid, std::string* error);

  // Deletes whole segments holding only records <= zxid (never the newest segment).
  void dropThrough(uint64_t zxid);

 private:
  struct Segment {
    std::string path;
    uint64_t first = 0;     // zxid of its first record (0 while empty)
    uint64_t last = 0;      // zxid of its last record
    uint64_t end = 0;       // offset after its last record
    uint64_t capacity = 0;  // bytes the file holds (zeros after end)
  };

  StorageCode scan(Segment& seg, bool newest, uint64_t previous, std::string* error);
  int roll(uint64_t first_zxid, uint64_t need, std::string* error);
  int zeroFill(int fd, uint64_t from, uint64_t to);
  int syncDir();
  int openActive(std::string* error);
  void closeActive();

  const std::string dir_;
  const uint64_t segment_bytes_;
  const bool fsync_;
  const std::function<void(const std::string&)> warn_;
  mutable std::mutex mu_;
  std::vector<Segment> segments_;  // oldest first
  int active_fd_ = -1;             // the newest segment, open for writing
  std::string buffer_;             // one group's encoded records, reused
};

}  // namespace corral::lmdb
