#include "journal.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "crc32.h"

namespace corral::lmdb {
namespace {

constexpr char kMagic[8] = {'C', 'R', 'L', 'J', 'R', 'N', 'L', '1'};
constexpr uint64_t kFileHeader = 16;    // magic, then 8 reserved bytes
constexpr uint64_t kRecordHeader = 16;  // length, crc, zxid
constexpr size_t kZeroChunk = 1 << 20;

void putLe(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i, v >>= 8) out.push_back(static_cast<char>(v & 0xff));
}

uint64_t getLe(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

// The checksum covers the length and zxid too, so a damaged header is caught like a
// damaged payload.
uint32_t recordCrc(const char* header, std::string_view payload) {
  uint32_t crc = crc32(header, 4);
  crc = crc32(header + 8, 8, crc);
  return crc32(payload.data(), payload.size(), crc);
}

void encodeRecord(std::string& out, uint64_t zxid, std::string_view payload) {
  size_t at = out.size();
  putLe(out, payload.size(), 4);
  putLe(out, 0, 4);
  putLe(out, zxid, 8);
  uint32_t crc = recordCrc(out.data() + at, payload);
  for (int i = 0; i < 4; ++i) out[at + 4 + i] = static_cast<char>((crc >> (8 * i)) & 0xff);
  out.append(payload);
}

// A record parsed at an offset of a segment's bytes.
struct Parsed {
  enum Kind { kRecord, kEnd, kBad } kind;
  uint64_t zxid = 0;
  std::string_view payload;
  uint64_t next = 0;
};

Parsed parseAt(std::string_view bytes, uint64_t off, uint64_t after_zxid, bool check_crc = true) {
  if (off + kRecordHeader > bytes.size()) return Parsed{Parsed::kEnd, 0, {}, 0};
  const char* h = bytes.data() + off;
  uint64_t len = getLe(h, 4), crc = getLe(h + 4, 4), zxid = getLe(h + 8, 8);
  if (len == 0 && crc == 0 && zxid == 0) return Parsed{Parsed::kEnd, 0, {}, 0};
  if (len > bytes.size() - off - kRecordHeader || zxid <= after_zxid)
    return Parsed{Parsed::kBad, 0, {}, 0};
  std::string_view payload = bytes.substr(off + kRecordHeader, len);
  if (check_crc && recordCrc(h, payload) != crc) return Parsed{Parsed::kBad, 0, {}, 0};
  return {Parsed::kRecord, zxid, payload, off + kRecordHeader + len};
}

// The first byte at or after `from` that is not zero (npos when none): the tail of a
// segment is megabytes of zeros, so this looks at a word at a time.
size_t firstNonZero(std::string_view bytes, size_t from) {
  size_t i = from;
  for (; i < bytes.size() && i % 8 != 0; ++i)
    if (bytes[i] != 0) return i;
  for (; i + 64 <= bytes.size(); i += 64) {  // eight words at a time: the compiler vectorises
    uint64_t words[8];
    std::memcpy(words, bytes.data() + i, 64);
    uint64_t any = 0;
    for (uint64_t w : words) any |= w;
    if (any != 0) break;
  }
  for (; i < bytes.size(); ++i)
    if (bytes[i] != 0) return i;
  return std::string_view::npos;
}

// Whether bytes [from, to) of the file are all zeros, read with pread: the zero tail of a
// segment is most of its 64 MB, and touching it through the mapping took a page fault per
// 4 KB (tens of ms at start-up on a virtual machine) where a copy takes a few.
bool zeroOnDisk(const std::string& path, uint64_t from, uint64_t to) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;  // the caller looks through the mapping instead
  std::vector<char> buf(1 << 20);
  bool zero = true;
  for (uint64_t at = from; zero && at < to;) {
    ssize_t n =
        ::pread(fd, buf.data(), static_cast<size_t>(std::min<uint64_t>(buf.size(), to - at)),
                static_cast<off_t>(at));
    if (n <= 0) {
      zero = false;
      break;
    }
    zero = firstNonZero(std::string_view(buf.data(), static_cast<size_t>(n)), 0) ==
           std::string_view::npos;
    at += static_cast<uint64_t>(n);
  }
  ::close(fd);
  return zero;
}

// Whether any offset after `from` holds a record that checks out: then the bad bytes at
// `from` are damage inside the history, not a torn end of it. A record's 16-byte header
// is never all zeros, so runs of zeros are skipped.
bool validRecordAfter(std::string_view bytes, uint64_t from, uint64_t after_zxid) {
  for (uint64_t off = from + 1; off + kRecordHeader <= bytes.size();) {
    size_t nonzero = firstNonZero(bytes, off);
    if (nonzero == std::string_view::npos) return false;
    if (nonzero >= off + kRecordHeader) {
      off = nonzero - (kRecordHeader - 1);
      continue;
    }
    if (parseAt(bytes, off, after_zxid).kind == Parsed::kRecord) return true;
    ++off;
  }
  return false;
}

// A segment's bytes, mapped read-only: a recovering server reads its whole journal, and a
// copy (plus zeroing the buffer first) cost more than everything else at start-up.
class MappedFile {
 public:
  MappedFile() = default;
  ~MappedFile() {
    if (data_ != nullptr) ::munmap(data_, size_);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  // Maps the first `size` bytes of path; returns an errno-style code.
  int map(const std::string& path, uint64_t size) {
    if (size == 0) return 0;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno;
    void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int rc = p == MAP_FAILED ? errno : 0;
    ::close(fd);
    if (rc != 0) return rc;
    ::madvise(p, size, MADV_SEQUENTIAL);
    data_ = p;
    size_ = size;
    return 0;
  }
  std::string_view bytes() const {
    return data_ == nullptr ? std::string_view()
                            : std::string_view(static_cast<char*>(data_), size_);
  }

 private:
  void* data_ = nullptr;
  size_t size_ = 0;
};

int writeAll(int fd, const char* data, size_t size, uint64_t at) {
  while (size > 0) {
    ssize_t n = ::pwrite(fd, data, size, static_cast<off_t>(at));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return n < 0 ? errno : EIO;
    data += n;
    size -= static_cast<size_t>(n);
    at += static_cast<uint64_t>(n);
  }
  return 0;
}

std::string hex16(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace

Journal::Journal(std::string dir, uint64_t segment_bytes, bool fsync,
                 std::function<void(const std::string&)> warn)
    : dir_(std::move(dir)), segment_bytes_(segment_bytes), fsync_(fsync), warn_(std::move(warn)) {}

Journal::~Journal() {
  closeActive();
}

void Journal::closeActive() {
  if (active_fd_ >= 0) ::close(active_fd_);
  active_fd_ = -1;
}

StorageCode Journal::open(std::string* error) {
  std::lock_guard<std::mutex> lock(mu_);
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) {
    *error = "cannot create " + dir_ + ": " + ec.message();
    return StorageCode::kIoError;
  }
  segments_.clear();
  for (const auto& entry : std::filesystem::directory_iterator(dir_, ec)) {
    std::string name = entry.path().filename().string();
    if (name.size() != 20 || name.substr(16) != ".log" ||
        name.find_first_not_of("0123456789abcdef") < 16)
      continue;
    Segment seg;
    seg.path = entry.path().string();
    seg.first = std::stoull(name.substr(0, 16), nullptr, 16);
    segments_.push_back(seg);
  }
  if (ec) {
    *error = "cannot list " + dir_ + ": " + ec.message();
    return StorageCode::kIoError;
  }
  std::sort(segments_.begin(), segments_.end(),
            [](const Segment& a, const Segment& b) { return a.first < b.first; });
  uint64_t previous = 0;
  for (size_t i = 0; i < segments_.size(); ++i) {
    StorageCode code = scan(segments_[i], i + 1 == segments_.size(), previous, error);
    if (code != StorageCode::kOk) return code;
    if (segments_[i].last != 0) previous = segments_[i].last;
  }
  // A segment with no records (a crash right after it was created) holds nothing to keep.
  std::erase_if(segments_, [](const Segment& s) {
    if (s.last != 0) return false;
    ::unlink(s.path.c_str());
    return true;
  });
  int rc = openActive(error);
  return rc == 0 ? StorageCode::kOk : StorageCode::kIoError;
}

StorageCode Journal::scan(Segment& seg, bool newest, uint64_t previous, std::string* error) {
  struct stat st {};
  if (::stat(seg.path.c_str(), &st) != 0) {
    *error = "cannot read " + seg.path + ": " + std::strerror(errno);
    return StorageCode::kIoError;
  }
  uint64_t named = seg.first;
  seg.capacity = static_cast<uint64_t>(st.st_size);
  seg.first = seg.last = 0;
  seg.end = kFileHeader;
  MappedFile file;
  if (int rc = file.map(seg.path, seg.capacity); rc != 0) {
    *error = "cannot read " + seg.path + ": " + std::strerror(rc);
    return StorageCode::kIoError;
  }
  std::string_view bytes = file.bytes();
  if (bytes.size() < kFileHeader || std::memcmp(bytes.data(), kMagic, 8) != 0) {
    // Only the newest file can be a segment whose creation a crash cut short.
    if (newest && firstNonZero(bytes, 0) == std::string_view::npos) return StorageCode::kOk;
    *error = seg.path + ": not a journal segment (bad header)";
    return StorageCode::kCorruption;
  }
  uint64_t off = kFileHeader, last = previous;
  Parsed p;
  while ((p = parseAt(bytes, off, last)).kind == Parsed::kRecord) {
    if (seg.first == 0) seg.first = p.zxid;
    last = seg.last = p.zxid;
    off = p.next;
  }
  seg.end = off;
  if (seg.first != 0 && seg.first != named) {
    *error = seg.path + ": its first record is zxid " + std::to_string(seg.first) +
             ", not the one its name says";
    return StorageCode::kCorruption;
  }
  if (zeroOnDisk(seg.path, off, bytes.size()) || firstNonZero(bytes, off) == std::string_view::npos)
    return StorageCode::kOk;
  if (validRecordAfter(bytes, off, last)) {
    *error = seg.path + ": damaged record at offset " + std::to_string(off) + " (after zxid " +
             std::to_string(last) + "), valid records follow it";
    return StorageCode::kCorruption;
  }
  if (!newest) {
    *error = seg.path + ": damaged record at offset " + std::to_string(off) + " (after zxid " +
             std::to_string(last) + ")";
    return StorageCode::kCorruption;
  }
  // A group whose write a crash cut short: never acknowledged, since acks wait for the sync.
  uint64_t dirty_end = bytes.find_last_not_of('\0') + 1;
  warn_("journal: " + seg.path + ": discarding " + std::to_string(dirty_end - off) +
        " bytes of a write cut short after zxid " + std::to_string(last));
  int fd = ::open(seg.path.c_str(), O_RDWR | O_CLOEXEC);
  int rc = fd < 0 ? errno : zeroFill(fd, off, dirty_end);
  if (rc == 0 && fsync_ && ::fdatasync(fd) != 0) rc = errno;
  if (fd >= 0) ::close(fd);
  if (rc != 0) {
    *error = "cannot cut the torn end of " + seg.path + ": " + std::strerror(rc);
    return StorageCode::kIoError;
  }
  return StorageCode::kOk;
}

int Journal::openActive(std::string* error) {
  closeActive();
  if (segments_.empty()) return 0;
  active_fd_ = ::open(segments_.back().path.c_str(), O_RDWR | O_CLOEXEC);
  if (active_fd_ >= 0) return 0;
  int rc = errno;
  *error = "cannot open " + segments_.back().path + ": " + std::strerror(rc);
  return rc;
}

uint64_t Journal::lastZxid() const {
  std::lock_guard<std::mutex> lock(mu_);
  return segments_.empty() ? 0 : segments_.back().last;
}

int Journal::zeroFill(int fd, uint64_t from, uint64_t to) {
  static const std::string zeros(kZeroChunk, '\0');
  for (uint64_t at = from; at < to;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(kZeroChunk, to - at));
    if (int rc = writeAll(fd, zeros.data(), n, at); rc != 0) return rc;
    at += n;
  }
  return 0;
}

int Journal::syncDir() {
  if (!fsync_) return 0;
  int fd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno;
  int rc = ::fsync(fd) == 0 ? 0 : errno;
  ::close(fd);
  return rc;
}

int Journal::roll(uint64_t first_zxid, uint64_t need, std::string* error) {
  // The finished segment gives back its unused zeros; if a crash undoes this, the zeros
  // read as the segment's end, which is where it ends anyway.
  if (active_fd_ >= 0 && ::ftruncate(active_fd_, static_cast<off_t>(segments_.back().end)) == 0)
    segments_.back().capacity = segments_.back().end;
  closeActive();
  Segment seg;
  seg.path = dir_ + "/" + hex16(first_zxid) + ".log";
  seg.capacity = std::max(segment_bytes_, kFileHeader + need);
  seg.end = kFileHeader;
  int fd = ::open(seg.path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  int rc = fd < 0 ? errno : 0;
  std::string header(kMagic, sizeof(kMagic));
  header.append(8, '\0');
  // Written out in full now, so the syncs of later groups have no size or extent to change.
  if (rc == 0) rc = writeAll(fd, header.data(), header.size(), 0);
  if (rc == 0) rc = zeroFill(fd, kFileHeader, seg.capacity);
  if (rc == 0 && fsync_ && ::fsync(fd) != 0) rc = errno;
  if (rc == 0) rc = syncDir();
  if (rc != 0) {
    *error = "cannot create journal segment " + seg.path + ": " + std::strerror(rc);
    if (fd >= 0) ::close(fd);
    ::unlink(seg.path.c_str());
    openActive(error);
    return rc;
  }
  segments_.push_back(seg);
  active_fd_ = fd;
  return 0;
}

int Journal::append(const std::vector<std::pair<uint64_t, std::string>>& records,
                    std::string* error) {
  if (records.empty()) return 0;
  std::lock_guard<std::mutex> lock(mu_);
  buffer_.clear();
  for (const auto& [zxid, record] : records) encodeRecord(buffer_, zxid, record);
  uint64_t need = buffer_.size();
  if (active_fd_ < 0 || segments_.back().end + need > segments_.back().capacity) {
    if (int rc = roll(records.front().first, need, error); rc != 0) return rc;
  }
  Segment& seg = segments_.back();
  int rc = writeAll(active_fd_, buffer_.data(), buffer_.size(), seg.end);
  if (rc == 0 && fsync_ && ::fdatasync(active_fd_) != 0) rc = errno;
  if (buffer_.capacity() > (8u << 20)) std::string().swap(buffer_);  // a burst's buffer
  if (rc != 0) {
    *error = "cannot write " + seg.path + ": " + std::strerror(rc);
    return rc;
  }
  seg.end += need;
  if (seg.first == 0) seg.first = records.front().first;
  seg.last = records.back().first;
  return 0;
}

StorageCode Journal::read(uint64_t after,
                          const std::function<bool(uint64_t, std::string_view)>& visit,
                          std::string* error) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const Segment& seg : segments_) {
    if (seg.last <= after) continue;
    MappedFile file;
    if (int rc = file.map(seg.path, seg.end); rc != 0) {
      *error = "cannot read " + seg.path + ": " + std::strerror(rc);
      return StorageCode::kIoError;
    }
    std::string_view bytes = file.bytes();
    uint64_t off = kFileHeader, previous = 0;
    while (off < seg.end) {
      // open() checked every record's checksum, and what came after was written here.
      Parsed p = parseAt(bytes, off, previous, /*check_crc=*/false);
      if (p.kind != Parsed::kRecord) {
        *error = seg.path + ": record at offset " + std::to_string(off) + " is not whole";
        return StorageCode::kCorruption;
      }
      if (p.zxid > after && !visit(p.zxid, p.payload)) return StorageCode::kOk;
      previous = p.zxid;
      off = p.next;
    }
  }
  return StorageCode::kOk;
}

StorageCode Journal::truncateAfter(uint64_t zxid, std::string* error) {
  std::lock_guard<std::mutex> lock(mu_);
  bool removed = false;
  while (!segments_.empty() && segments_.back().first > zxid) {
    if (active_fd_ >= 0) closeActive();
    if (::unlink(segments_.back().path.c_str()) != 0 && errno != ENOENT) {
      *error = "cannot remove " + segments_.back().path + ": " + std::strerror(errno);
      return StorageCode::kIoError;
    }
    segments_.pop_back();
    removed = true;
  }
  int rc = 0;
  if (!segments_.empty() && segments_.back().last > zxid) {
    Segment& seg = segments_.back();
    MappedFile file;
    rc = file.map(seg.path, seg.end);
    std::string_view bytes = file.bytes();
    uint64_t off = kFileHeader, cut = kFileHeader, previous = 0, kept = 0;
    while (rc == 0 && off < seg.end) {
      Parsed p = parseAt(bytes, off, previous);
      if (p.kind != Parsed::kRecord || p.zxid > zxid) break;
      kept = previous = p.zxid;
      cut = off = p.next;
    }
    if (rc == 0 && active_fd_ < 0) rc = openActive(error);
    if (rc == 0) rc = zeroFill(active_fd_, cut, seg.end);
    if (rc == 0 && fsync_ && ::fdatasync(active_fd_) != 0) rc = errno;
    if (rc == 0) {
      seg.end = cut;
      seg.last = kept;
    }
  }
  if (rc == 0 && removed) rc = syncDir();
  if (rc == 0 && active_fd_ < 0) rc = openActive(error);
  if (rc != 0) {
    *error = "cannot truncate the journal in " + dir_ + ": " + std::strerror(rc);
    return StorageCode::kIoError;
  }
  return StorageCode::kOk;
}

void Journal::dropThrough(uint64_t zxid) {
  std::lock_guard<std::mutex> lock(mu_);
  // A segment's records all precede the next segment's first zxid.
  while (segments_.size() > 1 && segments_[1].first <= zxid + 1) {
    ::unlink(segments_.front().path.c_str());
    segments_.erase(segments_.begin());
  }
}

}  // namespace corral::lmdb
