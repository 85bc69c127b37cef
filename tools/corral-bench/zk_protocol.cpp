#include "zk_protocol.h"

#include "jute.h"

namespace corral::bench::zk {
namespace {

// The header every request starts with; the xid is patched by the sender.
size_t beginRequest(JuteWriter& w, OpCode op) {
  size_t frame = w.beginFrame();
  w.int32(0);
  w.int32(op);
  return frame;
}

}  // namespace

void encodeConnect(std::string* out, int timeout_ms) {
  JuteWriter w(out);
  size_t frame = w.beginFrame();
  w.int32(0);  // protocolVersion
  w.int64(0);  // lastZxidSeen
  w.int32(timeout_ms);
  w.int64(0);  // sessionId: a new session
  w.buffer(std::string_view("\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 16));
  w.boolean(false);  // readOnly
  w.endFrame(frame);
}

void encodeCreate(std::string* out, std::string_view path, std::string_view data, int32_t flags) {
  JuteWriter w(out);
  size_t frame = beginRequest(w, kCreate);
  w.buffer(path);
  w.buffer(data);
  w.int32(1);   // one ACL: world:anyone, all permissions
  w.int32(31);  // READ | WRITE | CREATE | DELETE | ADMIN
  w.buffer("world");
  w.buffer("anyone");
  w.int32(flags);
  w.endFrame(frame);
}

void encodeDelete(std::string* out, std::string_view path) {
  JuteWriter w(out);
  size_t frame = beginRequest(w, kDelete);
  w.buffer(path);
  w.int32(-1);  // any version
  w.endFrame(frame);
}

void encodeRead(std::string* out, OpCode op, std::string_view path) {
  JuteWriter w(out);
  size_t frame = beginRequest(w, op);
  w.buffer(path);
  w.boolean(false);
  w.endFrame(frame);
}

void encodeSetData(std::string* out, std::string_view path, std::string_view data) {
  JuteWriter w(out);
  size_t frame = beginRequest(w, kSetData);
  w.buffer(path);
  w.buffer(data);
  w.int32(-1);  // any version
  w.endFrame(frame);
}

void encodeMultiSetData(std::string* out, std::string_view path, std::string_view data, int count) {
  JuteWriter w(out);
  size_t frame = beginRequest(w, kMulti);
  for (int i = 0; i < count; ++i) {
    w.int32(kSetData);  // MultiHeader: type, done, err
    w.boolean(false);
    w.int32(-1);
    w.buffer(path);
    w.buffer(data);
    w.int32(-1);  // any version
  }
  w.int32(-1);  // the closing MultiHeader
  w.boolean(true);
  w.int32(-1);
  w.endFrame(frame);
}

bool multiSetDataSucceeded(std::string_view body, int count) {
  constexpr size_t kStatBytes = 68;  // 6 longs and 5 ints
  JuteReader r(body);
  int results = 0;
  for (;;) {
    int32_t type = r.int32();
    bool done = r.boolean();
    r.int32();  // err: the results say it
    if (!r.ok()) return false;
    if (done) return results == count;
    if (type != kSetData) return false;  // an ErrorResult (type -1): the multi failed
    r.skip(kStatBytes);
    ++results;
  }
}

void encodeBare(std::string* out, int32_t xid, OpCode op) {
  JuteWriter w(out);
  size_t frame = w.beginFrame();
  w.int32(xid);
  w.int32(op);
  w.endFrame(frame);
}

std::string errorName(int32_t err) {
  switch (err) {
    case kOk:
      return "ZOK";
    case kNoNode:
      return "ZNONODE";
    case kNodeExists:
      return "ZNODEEXISTS";
    case -4:
      return "ZCONNECTIONLOSS";
    case -102:
      return "ZNOAUTH";
    case -103:
      return "ZBADVERSION";
    case -108:
      return "ZNOCHILDRENFOREPHEMERALS";
    case -111:
      return "ZNOTEMPTY";
    case -112:
      return "ZSESSIONEXPIRED";
    default:
      return "error " + std::to_string(err);
  }
}

}  // namespace corral::bench::zk
