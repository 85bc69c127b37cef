// Translation between ZooKeeper's client protocol (jute records) and Corral's native frames,
// for one connection. The kernel sees a zkwire client exactly as it sees a native one.
//
// Protocol facts (from Apache ZooKeeper's zookeeper.jute and ClientCnxn): the first frame is
// a ConnectRequest; then RequestHeader{xid, type} + the type's record; replies are
// ReplyHeader{xid, zxid, err} + the record (only when err is 0, except multi); watch events
// are ReplyHeader{-1, zxid, 0} + WatcherEvent{type, state, path}; a ConnectResponse with a
// zero timeout tells the client its session expired.
#pragma once

#include <corral/proto.h>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace corral::zkwire {

class ZkSession {
 public:
  // One client frame (without its length prefix) -> one native frame. False, with a reason,
  // for anything that is not a well-formed ZooKeeper request.
  bool fromClient(std::string_view frame, std::string* native, std::string* error);

  // One native frame from the kernel -> the ZooKeeper frame to write (with its length
  // prefix); empty when the client gets nothing for it. *close_after: the connection ends
  // after this frame (an expired session).
  bool toClient(std::string_view native, std::string* out, bool* close_after, std::string* error);

  bool handshakeDone() const { return connected_; }
  int64_t lastZxid() const { return last_zxid_; }
  int64_t sessionId() const { return session_id_; }

 private:
  bool connectFromClient(std::string_view frame, std::string* native, std::string* error);

  bool connect_seen_ = false;
  bool connected_ = false;
  int64_t session_id_ = 0;
  int64_t last_zxid_ = 0;
  // The op types of requests awaiting their reply, by xid: the reply's record depends on
  // them (and on each sub-op of a multi). A list per xid: special xids repeat.
  std::map<int32_t, std::vector<std::vector<OpCode>>> pending_;
};

}  // namespace corral::zkwire
