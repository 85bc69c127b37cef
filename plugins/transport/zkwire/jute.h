// Jute, ZooKeeper's record encoding: big-endian ints and longs, one-byte booleans, and
// length-prefixed buffers, strings and vectors (length -1 = null). The reader checks every
// length against the bytes left, so a hostile frame fails cleanly.
#pragma once

#include <corral/proto.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace corral::zkwire {

class JuteWriter {
 public:
  explicit JuteWriter(std::string* out) : out_(out) {}
  void i32(int32_t v) {
    for (int s = 24; s >= 0; s -= 8) out_->push_back(static_cast<char>((v >> s) & 0xff));
  }
  void i64(int64_t v) {
    for (int s = 56; s >= 0; s -= 8) out_->push_back(static_cast<char>((v >> s) & 0xff));
  }
  void boolean(bool v) { out_->push_back(v ? 1 : 0); }
  void buffer(std::string_view b) {
    i32(static_cast<int32_t>(b.size()));
    out_->append(b);
  }
  void string(std::string_view s) { buffer(s); }
  void strings(const std::vector<std::string>& v) {
    i32(static_cast<int32_t>(v.size()));
    for (const auto& s : v) string(s);
  }
  void stat(const Stat& s) {
    i64(s.czxid);
    i64(s.mzxid);
    i64(s.ctime);
    i64(s.mtime);
    i32(s.version);
    i32(s.cversion);
    i32(s.aversion);
    i64(s.ephemeral_owner);
    i32(s.data_length);
    i32(s.num_children);
    i64(s.pzxid);
  }
  void acl(const std::vector<Acl>& acl) {
    i32(static_cast<int32_t>(acl.size()));
    for (const Acl& a : acl) {
      i32(a.perms);
      string(a.id.scheme);
      string(a.id.id);
    }
  }

 private:
  std::string* out_;
};

class JuteReader {
 public:
  explicit JuteReader(std::string_view in) : in_(in) {}
  bool ok() const { return ok_; }
  bool done() const { return pos_ == in_.size(); }
  size_t left() const { return in_.size() - pos_; }

  int32_t i32() {
    if (!need(4)) return 0;
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(in_[pos_++]);
    return static_cast<int32_t>(v);
  }
  int64_t i64() {
    if (!need(8)) return 0;
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(in_[pos_++]);
    return static_cast<int64_t>(v);
  }
  bool boolean() {
    if (!need(1)) return false;
    return in_[pos_++] != 0;
  }
  std::string buffer() {
    int32_t n = i32();
    if (n == -1 || !ok_) return {};
    if (n < 0 || static_cast<size_t>(n) > left()) {
      ok_ = false;
      return {};
    }
    std::string s(in_.substr(pos_, static_cast<size_t>(n)));
    pos_ += static_cast<size_t>(n);
    return s;
  }
  std::string string() { return buffer(); }
  // A vector count: -1 (null) reads as 0; a count that cannot fit in what is left fails.
  int32_t count(size_t min_item_bytes) {
    int32_t n = i32();
    if (n == -1) return 0;
    if (!ok_ || n < 0 || static_cast<uint64_t>(n) * min_item_bytes > left()) {
      ok_ = false;
      return 0;
    }
    return n;
  }
  std::vector<std::string> strings() {
    std::vector<std::string> out;
    int32_t n = count(4);
    for (int32_t i = 0; i < n && ok_; ++i) out.push_back(string());
    return out;
  }
  std::vector<Acl> acl() {
    std::vector<Acl> out;
    int32_t n = count(12);
    for (int32_t i = 0; i < n && ok_; ++i) {
      Acl a;
      a.perms = i32();
      a.id.scheme = string();
      a.id.id = string();
      out.push_back(std::move(a));
    }
    return out;
  }

 private:
  bool need(size_t n) {
    if (ok_ && left() >= n) return true;
    ok_ = false;
    return false;
  }
  std::string_view in_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace corral::zkwire
