// ByteWriter / ByteReader: the little binary format of txns and snapshots (fixed-width
// little-endian integers, length-prefixed byte strings). The reader checks every length
// against what is left, so garbage input fails cleanly instead of crashing.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace corral::kernel {

class ByteWriter {
 public:
  explicit ByteWriter(std::string* out) : out_(out) {}
  void u8(uint8_t v) { out_->push_back(static_cast<char>(v)); }
  void u32(uint32_t v) { fixed(v); }
  void i32(int32_t v) { fixed(static_cast<uint32_t>(v)); }
  void i64(int64_t v) { fixed(static_cast<uint64_t>(v)); }
  void bytes(std::string_view s) {
    u32(static_cast<uint32_t>(s.size()));
    out_->append(s.data(), s.size());
  }

 private:
  template <typename T>
  void fixed(T v) {
    char buf[sizeof(T)];
    if constexpr (std::endian::native == std::endian::little) {
      std::memcpy(buf, &v, sizeof(T));
    } else {
      for (size_t i = 0; i < sizeof(T); ++i) buf[i] = static_cast<char>((v >> (8 * i)) & 0xff);
    }
    out_->append(buf, sizeof(T));
  }
  std::string* out_;
};

class ByteReader {
 public:
  explicit ByteReader(std::string_view in) : in_(in) {}
  bool ok() const { return ok_; }
  bool done() const { return pos_ == in_.size(); }
  uint8_t u8() { return static_cast<uint8_t>(fixed<uint8_t>()); }
  uint32_t u32() { return fixed<uint32_t>(); }
  int32_t i32() { return static_cast<int32_t>(fixed<uint32_t>()); }
  int64_t i64() { return static_cast<int64_t>(fixed<uint64_t>()); }
  std::string bytes() { return std::string(view()); }
  // The next byte string as a view into the input (no copy).
  std::string_view view() {
    uint32_t n = u32();
    if (!ok_ || n > in_.size() - pos_) {
      ok_ = false;
      return {};
    }
    std::string_view s = in_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  // A count of items that each take at least min_item_bytes: rejects impossible counts
  // before anything is allocated for them.
  uint32_t count(size_t min_item_bytes) {
    uint32_t n = u32();
    if (ok_ && static_cast<uint64_t>(n) * min_item_bytes > in_.size() - pos_) ok_ = false;
    return ok_ ? n : 0;
  }

 private:
  template <typename T>
  T fixed() {
    if (!ok_ || in_.size() - pos_ < sizeof(T)) {
      ok_ = false;
      return 0;
    }
    T v = 0;
    for (size_t i = 0; i < sizeof(T); ++i)
      v |= static_cast<T>(static_cast<T>(static_cast<uint8_t>(in_[pos_ + i])) << (8 * i));
    pos_ += sizeof(T);
    return v;
  }
  std::string_view in_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace corral::kernel
