#include "zab/messages.h"

#include "state/bytes.h"

namespace corral::zab {

std::string encodeMsg(MsgType type, int64_t epoch, int64_t zxid, std::string_view payload,
                      int64_t a, int64_t b, uint8_t flags) {
  std::string out;
  out.reserve(42 + payload.size());
  kernel::ByteWriter w(&out);
  w.u8(static_cast<uint8_t>(type));
  w.i64(epoch);
  w.i64(zxid);
  w.i64(a);
  w.i64(b);
  w.u8(flags);
  w.bytes(payload);
  return out;
}

std::string encodeMsg(const Msg& m) {
  return encodeMsg(m.type, m.epoch, m.zxid, m.payload, m.a, m.b, m.flags);
}

bool decodeMsg(std::string_view bytes, Msg* m) {
  kernel::ByteReader r(bytes);
  uint8_t type = r.u8();
  m->epoch = r.i64();
  m->zxid = r.i64();
  m->a = r.i64();
  m->b = r.i64();
  m->flags = r.u8();
  m->payload = r.bytes();
  if (!r.ok() || !r.done()) return false;
  if (type < static_cast<uint8_t>(MsgType::kVote) ||
      type > static_cast<uint8_t>(MsgType::kNewEpoch))
    return false;
  m->type = static_cast<MsgType>(type);
  return true;
}

}  // namespace corral::zab
