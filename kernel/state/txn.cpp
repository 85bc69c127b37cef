#include "state/txn.h"

#include <charconv>

#include "state/bytes.h"
#include "state/txn_body.h"

namespace corral::kernel {
namespace {
constexpr uint8_t kTxnFormat = 1;
}

std::string encodeTxn(const Txn& txn) {
  std::string out;
  ByteWriter w(&out);
  w.u8(kTxnFormat);
  w.i64(txn.zxid);
  w.i64(txn.time_ms);
  w.i64(txn.session_id);
  w.i32(txn.xid);
  w.i32(static_cast<int32_t>(txn.type));
  w.i32(static_cast<int32_t>(txn.err));
  w.u32(static_cast<uint32_t>(txn.fields.size()));
  for (const auto& f : txn.fields) w.bytes(f);
  return out;
}

bool decodeTxnReusing(std::string_view bytes, Txn* out, std::string* error) {
  ByteReader r(bytes);
  uint8_t format = r.u8();
  if (r.ok() && format != kTxnFormat) {
    *error = "unknown txn format " + std::to_string(format);
    return false;
  }
  Txn& t = *out;
  t.zxid = r.i64();
  t.time_ms = r.i64();
  t.session_id = r.i64();
  t.xid = r.i32();
  t.type = static_cast<OpCode>(r.i32());
  t.err = static_cast<ZkError>(r.i32());
  uint32_t n = r.count(4);
  if (t.fields.size() > n) t.fields.resize(n);
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    std::string_view f = r.view();
    if (i < t.fields.size()) {
      t.fields[i].assign(f);
    } else {
      t.fields.emplace_back(f);
    }
  }
  if (!r.ok() || !r.done() || t.fields.size() != n) {
    *error = "malformed txn record";
    return false;
  }
  return true;
}

bool decodeTxn(std::string_view bytes, Txn* out, std::string* error) {
  Txn t;
  if (!decodeTxnReusing(bytes, &t, error)) return false;
  *out = std::move(t);
  return true;
}

std::string encodeAcl(const std::vector<Acl>& acl) {
  std::string out;
  ByteWriter w(&out);
  w.u32(static_cast<uint32_t>(acl.size()));
  for (const Acl& a : acl) {
    w.i32(a.perms);
    w.bytes(a.id.scheme);
    w.bytes(a.id.id);
  }
  return out;
}

bool decodeAcl(std::string_view bytes, std::vector<Acl>* out) {
  ByteReader r(bytes);
  uint32_t n = r.count(12);
  out->clear();
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    Acl a;
    a.perms = r.i32();
    a.id.scheme = r.bytes();
    a.id.id = r.bytes();
    out->push_back(std::move(a));
  }
  return r.ok() && r.done();
}

std::string intField(int64_t v) {
  return std::to_string(v);
}

bool parseIntField(const std::string& s, int64_t* out) {
  auto res = std::from_chars(s.data(), s.data() + s.size(), *out);
  return res.ec == std::errc() && res.ptr == s.data() + s.size();
}

}  // namespace corral::kernel
