// Jute, ZooKeeper's record encoding, as far as the raw driver needs it: big-endian integers,
// strings and buffers as an int length then bytes (-1 = null), every message framed by a
// 4-byte length.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace corral::bench {

inline void putInt32(char* at, int32_t v) {
  uint32_t u = static_cast<uint32_t>(v);
  at[0] = static_cast<char>(u >> 24);
  at[1] = static_cast<char>(u >> 16);
  at[2] = static_cast<char>(u >> 8);
  at[3] = static_cast<char>(u);
}

inline int32_t getInt32(const char* at) {
  const auto* p = reinterpret_cast<const unsigned char*>(at);
  return static_cast<int32_t>(uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 |
                              uint32_t{p[3]});
}

// Appends fields to a caller-owned buffer; allocates only when the buffer must grow.
class JuteWriter {
 public:
  explicit JuteWriter(std::string* out) : out_(out) {}

  void int32(int32_t v) {
    char b[4];
    putInt32(b, v);
    out_->append(b, 4);
  }
  void int64(int64_t v) {
    int32(static_cast<int32_t>(static_cast<uint64_t>(v) >> 32));
    int32(static_cast<int32_t>(v));
  }
  void boolean(bool v) { out_->push_back(v ? 1 : 0); }
  void buffer(std::string_view b) {
    int32(static_cast<int32_t>(b.size()));
    out_->append(b);
  }

  // A frame is a length placeholder, then the record; endFrame fills the length in.
  size_t beginFrame() {
    size_t at = out_->size();
    int32(0);
    return at;
  }
  void endFrame(size_t at) {
    putInt32(out_->data() + at, static_cast<int32_t>(out_->size() - at - 4));
  }

 private:
  std::string* out_;
};

// Reads fields from a view; reading past the end yields zeros and clears ok().
class JuteReader {
 public:
  explicit JuteReader(std::string_view in) : in_(in) {}

  int32_t int32() {
    if (!take(4)) return 0;
    return getInt32(in_.data() - 4);
  }
  int64_t int64() {
    uint64_t hi = static_cast<uint32_t>(int32());
    uint64_t lo = static_cast<uint32_t>(int32());
    return static_cast<int64_t>(hi << 32 | lo);
  }
  bool boolean() { return take(1) && in_.data()[-1] != 0; }
  // A null buffer (-1) reads as empty.
  std::string_view buffer() {
    int32_t n = int32();
    if (n <= 0) return {};
    if (!take(static_cast<size_t>(n))) return {};
    return std::string_view(in_.data() - n, static_cast<size_t>(n));
  }
  void skip(size_t n) { take(n); }
  // What has not been read yet.
  std::string_view rest() const { return in_; }
  bool ok() const { return ok_; }
  size_t remaining() const { return in_.size(); }

 private:
  bool take(size_t n) {
    if (!ok_ || in_.size() < n) {
      ok_ = false;
      return false;
    }
    in_.remove_prefix(n);
    return true;
  }

  std::string_view in_;
  bool ok_ = true;
};

}  // namespace corral::bench
