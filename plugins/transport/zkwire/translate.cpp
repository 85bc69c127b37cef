#include "translate.h"

#include <corral/codec.h>

#include "jute.h"

namespace corral::zkwire {
namespace {

constexpr int32_t kNotificationXid = -1;

bool knownRequestType(int32_t t) {
  switch (static_cast<OpCode>(t)) {
    case OpCode::kCreate:
    case OpCode::kDelete:
    case OpCode::kExists:
    case OpCode::kGetData:
    case OpCode::kSetData:
    case OpCode::kGetAcl:
    case OpCode::kSetAcl:
    case OpCode::kGetChildren:
    case OpCode::kSync:
    case OpCode::kPing:
    case OpCode::kGetChildren2:
    case OpCode::kCheck:
    case OpCode::kMulti:
    case OpCode::kCreate2:
    case OpCode::kReconfig:
    case OpCode::kCheckWatches:
    case OpCode::kRemoveWatches:
    case OpCode::kCreateContainer:
    case OpCode::kCreateTtl:
    case OpCode::kMultiRead:
    case OpCode::kAuth:
    case OpCode::kSetWatches:
    case OpCode::kSasl:
    case OpCode::kGetEphemerals:
    case OpCode::kGetAllChildrenNumber:
    case OpCode::kSetWatches2:
    case OpCode::kAddWatch:
    case OpCode::kWhoAmI:
    case OpCode::kCloseSession:
      return true;
    default:
      return false;
  }
}

bool validMode(int32_t flags) {
  return flags >= 0 && flags <= 6;
}

// Reads one operation's record (the part after its header) into op.
bool readOp(JuteReader& r, OpCode type, Op* op, std::string* error) {
  op->op = type;
  switch (type) {
    case OpCode::kCreate:
    case OpCode::kCreate2:
    case OpCode::kCreateContainer:
    case OpCode::kCreateTtl: {
      op->path = r.string();
      op->data = r.buffer();
      op->acl = r.acl();
      int32_t flags = r.i32();
      if (type == OpCode::kCreateTtl) op->ttl_ms = r.i64();
      if (r.ok() && !validMode(flags)) {
        *error = "unknown create mode " + std::to_string(flags);
        return false;
      }
      op->mode = static_cast<CreateMode>(flags);
      if (type == OpCode::kCreateContainer) op->mode = CreateMode::kContainer;
      break;
    }
    case OpCode::kDelete:
    case OpCode::kCheck:
      op->path = r.string();
      op->version = r.i32();
      break;
    case OpCode::kExists:
    case OpCode::kGetData:
    case OpCode::kGetChildren:
    case OpCode::kGetChildren2:
      op->path = r.string();
      op->watch = r.boolean();
      break;
    case OpCode::kSetData:
      op->path = r.string();
      op->data = r.buffer();
      op->version = r.i32();
      break;
    case OpCode::kGetAcl:
    case OpCode::kSync:
    case OpCode::kGetEphemerals:
    case OpCode::kGetAllChildrenNumber:
      op->path = r.string();
      break;
    case OpCode::kSetAcl:
      op->path = r.string();
      op->acl = r.acl();
      op->version = r.i32();
      break;
    case OpCode::kCheckWatches:
    case OpCode::kRemoveWatches: {
      op->path = r.string();
      int32_t t = r.i32();
      if (r.ok() && (t < 1 || t > 3)) {
        *error = "unknown watcher type " + std::to_string(t);
        return false;
      }
      op->watcher_type = static_cast<WatcherType>(t);
      break;
    }
    case OpCode::kAddWatch: {
      op->path = r.string();
      int32_t mode = r.i32();
      if (r.ok() && (mode < 0 || mode > 1)) {
        *error = "unknown addWatch mode " + std::to_string(mode);
        return false;
      }
      op->watch_mode = static_cast<AddWatchMode>(mode);
      break;
    }
    case OpCode::kAuth:
      r.i32();  // AuthPacket.type, unused by ZooKeeper too
      op->scheme = r.string();
      op->auth = r.buffer();
      break;
    case OpCode::kSetWatches:
    case OpCode::kSetWatches2:
      op->relative_zxid = r.i64();
      op->data_watches = r.strings();
      op->exist_watches = r.strings();
      op->child_watches = r.strings();
      if (type == OpCode::kSetWatches2) {
        op->persistent_watches = r.strings();
        op->persistent_recursive_watches = r.strings();
      }
      break;
    default:  // ping, closeSession, whoAmI, sasl, reconfig: no record the kernel reads
      break;
  }
  if (!r.ok()) {
    *error = "truncated or malformed record for opcode " + std::to_string(static_cast<int>(type));
    return false;
  }
  return true;
}

// The reply record of one result, by the type of the request it answers.
void writeResult(JuteWriter& w, OpCode type, const OpResult& r, const Response& resp) {
  switch (type) {
    case OpCode::kCreate:
      w.string(r.path);
      break;
    case OpCode::kCreate2:
    case OpCode::kCreateContainer:
    case OpCode::kCreateTtl:
      w.string(r.path);
      w.stat(r.stat);
      break;
    case OpCode::kExists:
    case OpCode::kSetData:
    case OpCode::kSetAcl:
      w.stat(r.stat);
      break;
    case OpCode::kGetData:
      w.buffer(r.data);
      w.stat(r.stat);
      break;
    case OpCode::kGetAcl:
      w.acl(r.acl);
      w.stat(r.stat);
      break;
    case OpCode::kGetChildren:
      w.strings(r.children);
      break;
    case OpCode::kGetChildren2:
      w.strings(r.children);
      w.stat(r.stat);
      break;
    case OpCode::kSync:
      w.string(r.path);
      break;
    case OpCode::kGetEphemerals:
      w.strings(r.children);
      break;
    case OpCode::kGetAllChildrenNumber:
      w.i32(r.count);
      break;
    case OpCode::kWhoAmI:
      w.i32(static_cast<int32_t>(r.ids.size()));
      for (const Id& id : r.ids) {
        w.string(id.scheme);
        w.string(id.id);
      }
      break;
    default:  // delete, check, setWatches, addWatch, removeWatches, auth, ping, close
      break;
  }
  (void)resp;
}

}  // namespace

bool ZkSession::connectFromClient(std::string_view frame, std::string* native, std::string* error) {
  JuteReader r(frame);
  ConnectRequest c;
  c.protocol_version = r.i32();
  c.last_zxid_seen = r.i64();
  c.timeout_ms = r.i32();
  c.session_id = r.i64();
  c.password = r.buffer();
  if (!r.ok()) {
    *error = "malformed ConnectRequest";
    return false;
  }
  if (r.left() >= 1) c.read_only = r.boolean();  // older clients omit it
  if (c.session_id == 0) c.password.clear();
  connect_seen_ = true;
  *native = encodeConnect(c);
  return true;
}

bool ZkSession::fromClient(std::string_view frame, std::string* native, std::string* error) {
  if (!connect_seen_) return connectFromClient(frame, native, error);
  if (!connected_) {
    *error = "request before the session was established";
    return false;
  }
  JuteReader r(frame);
  Request req;
  req.xid = r.i32();
  int32_t type = r.i32();
  if (!r.ok()) {
    *error = "truncated request header";
    return false;
  }
  if (!knownRequestType(type)) {
    *error = "unknown opcode " + std::to_string(type);
    return false;
  }
  OpCode op = static_cast<OpCode>(type);
  std::vector<OpCode> types = {op};
  if (op == OpCode::kMulti || op == OpCode::kMultiRead) {
    req.op.op = op;
    for (int i = 0; i < 100000; ++i) {
      int32_t sub_type = r.i32();
      bool done = r.boolean();
      r.i32();  // err, unused in requests
      if (!r.ok()) {
        *error = "truncated multi header";
        return false;
      }
      if (done) break;
      if (!knownRequestType(sub_type)) {
        *error = "unknown opcode " + std::to_string(sub_type) + " in multi";
        return false;
      }
      Op sub;
      if (!readOp(r, static_cast<OpCode>(sub_type), &sub, error)) return false;
      req.ops.push_back(std::move(sub));
      types.push_back(static_cast<OpCode>(sub_type));
    }
  } else if (!readOp(r, op, &req.op, error)) {
    return false;
  }
  pending_[req.xid].push_back(std::move(types));
  *native = encodeRequest(req);
  return true;
}

bool ZkSession::toClient(std::string_view native, std::string* out, bool* close_after,
                         std::string* error) {
  out->clear();
  *close_after = false;
  Frame f;
  if (!decodeFrame(native, &f, error)) return false;
  std::string body;
  JuteWriter w(&body);
  switch (f.kind) {
    case FrameKind::kConnectResponse: {
      connected_ = f.connected.err == ZkError::kOk;
      // ZooKeeper tells a client its session is gone with a zero timeout.
      w.i32(0);
      w.i32(connected_ ? f.connected.timeout_ms : 0);
      w.i64(connected_ ? f.connected.session_id : 0);
      w.buffer(connected_ ? f.connected.password : std::string(16, '\0'));
      w.boolean(false);
      if (connected_) session_id_ = f.connected.session_id;
      *close_after = !connected_;
      break;
    }
    case FrameKind::kEvent: {
      if (f.event.type == EventType::kNone) {
        // Expiry: ZooKeeper closes the connection; the client learns it when reconnecting.
        return true;
      }
      if (f.event.zxid > last_zxid_) last_zxid_ = f.event.zxid;
      w.i32(kNotificationXid);
      w.i64(f.event.zxid);
      w.i32(0);
      w.i32(static_cast<int32_t>(f.event.type));
      w.i32(static_cast<int32_t>(f.event.state));
      w.string(f.event.path);
      break;
    }
    case FrameKind::kResponse: {
      const Response& resp = f.response;
      if (resp.zxid > last_zxid_) last_zxid_ = resp.zxid;
      std::vector<OpCode> types = {resp.result.op};
      auto it = pending_.find(resp.xid);
      if (it != pending_.end() && !it->second.empty()) {
        types = std::move(it->second.front());
        it->second.erase(it->second.begin());
        if (it->second.empty()) pending_.erase(it);
      }
      OpCode type = types.empty() ? resp.result.op : types[0];
      bool multi = type == OpCode::kMulti || type == OpCode::kMultiRead;
      w.i32(resp.xid);
      w.i64(resp.zxid);
      // A multi's errors travel in its results; ZooKeeper's header says OK (kazoo and the C
      // client read the per-op results).
      w.i32(multi ? 0 : static_cast<int32_t>(resp.err));
      if (multi) {
        for (size_t i = 0; i < resp.results.size(); ++i) {
          const OpResult& r = resp.results[i];
          OpCode sub = i + 1 < types.size() ? types[i + 1] : r.op;
          bool failed = r.err != ZkError::kOk || r.op == OpCode::kError;
          w.i32(failed ? -1 : static_cast<int32_t>(sub));
          w.boolean(false);
          w.i32(static_cast<int32_t>(r.err));
          if (failed)
            w.i32(static_cast<int32_t>(r.err));  // ErrorResponse
          else
            writeResult(w, sub, r, resp);
        }
        w.i32(-1);
        w.boolean(true);
        w.i32(-1);
      } else if (resp.err == ZkError::kOk) {
        writeResult(w, type, resp.result, resp);
      }
      *close_after = type == OpCode::kCloseSession;
      break;
    }
    default:
      *error = "unexpected native frame kind";
      return false;
  }
  JuteWriter(out).i32(static_cast<int32_t>(body.size()));
  out->append(body);
  return true;
}

}  // namespace corral::zkwire
