#include "txn_text.h"

#include <cstdio>
#include <ctime>

#include "state/txn_body.h"

namespace corral::admin {

using kernel::decodeAcl;
using kernel::decodeTxn;

const char* opName(OpCode op) {
  switch (op) {
    case OpCode::kCreate:
      return "create";
    case OpCode::kCreate2:
      return "create2";
    case OpCode::kCreateContainer:
      return "createContainer";
    case OpCode::kCreateTtl:
      return "createTTL";
    case OpCode::kDelete:
      return "delete";
    case OpCode::kDeleteContainer:
      return "deleteContainer";
    case OpCode::kSetData:
      return "setData";
    case OpCode::kSetAcl:
      return "setACL";
    case OpCode::kCheck:
      return "check";
    case OpCode::kMulti:
      return "multi";
    case OpCode::kCreateSession:
      return "createSession";
    case OpCode::kCloseSession:
      return "closeSession";
    case OpCode::kError:
      return "error";
    default:
      return "op";
  }
}

std::string bytesText(std::string_view bytes) {
  bool printable = true;
  for (unsigned char c : bytes) printable &= c >= 0x20 && c < 0x7f && c != '"';
  if (printable) return "\"" + std::string(bytes) + "\"";
  std::string out = "0x";
  char buf[4];
  for (unsigned char c : bytes) {
    std::snprintf(buf, sizeof(buf), "%02x", c);
    out += buf;
  }
  return out;
}

namespace {

std::string hex(int64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string isoTime(int64_t ms) {
  time_t secs = static_cast<time_t>(ms / 1000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char buf[64];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  char out[80];
  std::snprintf(out, sizeof(out), "%s.%03lldZ", buf, static_cast<long long>(ms % 1000));
  return out;
}

std::string aclText(const std::string& encoded) {
  std::vector<Acl> acl;
  if (!decodeAcl(encoded, &acl)) return bytesText(encoded);
  std::string out;
  for (const Acl& a : acl)
    out += (out.empty() ? "" : ",") + a.id.scheme + ":" + a.id.id + ":" + std::to_string(a.perms);
  return out;
}

std::string body(const Txn& t) {
  auto f = [&](size_t i) -> const std::string& {
    static const std::string kEmpty;
    return i < t.fields.size() ? t.fields[i] : kEmpty;
  };
  switch (t.type) {
    case OpCode::kCreate:
    case OpCode::kCreate2:
    case OpCode::kCreateContainer:
    case OpCode::kCreateTtl:
      return f(0) + " data=" + bytesText(f(1)) + " acl=" + aclText(f(2)) + " owner=" + f(3) +
             " kind=" + f(4) + (f(5) != "0" ? " ttl=" + f(5) : "");
    case OpCode::kDelete:
    case OpCode::kDeleteContainer:
    case OpCode::kCheck:
      return f(0);
    case OpCode::kSetData:
      return f(0) + " data=" + bytesText(f(1));
    case OpCode::kSetAcl:
      return f(0) + " acl=" + aclText(f(1));
    case OpCode::kCreateSession:
      return "timeout=" + f(0) + "ms";
    case OpCode::kMulti: {
      std::string out = "[";
      for (const std::string& sub : t.fields) {
        Txn s;
        std::string error;
        out += out.size() > 1 ? "; " : "";
        out += decodeTxn(sub, &s, &error) ? std::string(opName(s.type)) + " " + body(s)
                                          : "<" + error + ">";
      }
      return out + "]";
    }
    case OpCode::kError:
      return std::string("err=") + zkErrorName(t.err);
    default:
      return "";
  }
}

}  // namespace

std::string txnText(const Txn& t) {
  std::string out = "zxid " + hex(t.zxid) + " time " + isoTime(t.time_ms);
  if (t.session_id != 0) out += " session " + hex(t.session_id);
  out += std::string(" ") + opName(t.type);
  std::string b = body(t);
  if (!b.empty()) out += " " + b;
  return out;
}

}  // namespace corral::admin
