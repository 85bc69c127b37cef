// The native msgpack encoding (schema: docs/protocol.md).
//
// Every frame is a msgpack array whose first element is the FrameKind. Operations and
// results are maps with small integer keys holding only non-default fields, so frames stay
// small and fields can be added without breaking old peers (unknown keys are skipped).
#include <corral/codec.h>

#include <msgpack.hpp>

#include <cstring>
#include <limits>

namespace corral {
namespace {

// --- encoding ---------------------------------------------------------------------------

struct StringSink {
  std::string* out;
  void write(const char* data, size_t n) { out->append(data, n); }
};
using Packer = msgpack::packer<StringSink>;

// Keys of an Op map.
enum OpKey : uint32_t {
  kOpCode = 0,
  kOpPath = 1,
  kOpData = 2,
  kOpAcl = 3,
  kOpVersion = 4,
  kOpMode = 5,
  kOpTtl = 6,
  kOpWatch = 7,
  kOpWatchMode = 8,
  kOpWatcherType = 9,
  kOpScheme = 10,
  kOpAuth = 11,
  kOpRelativeZxid = 12,
  kOpDataWatches = 13,
  kOpExistWatches = 14,
  kOpChildWatches = 15,
  kOpPersistentWatches = 16,
  kOpRecursiveWatches = 17,
};

// Keys of an OpResult map.
enum ResultKey : uint32_t {
  kResOp = 0,
  kResErr = 1,
  kResPath = 2,
  kResData = 3,
  kResStat = 4,
  kResChildren = 5,
  kResAcl = 6,
  kResCount = 7,
  kResIds = 8,
};

void packStr(Packer& pk, std::string_view s) {
  pk.pack_str(static_cast<uint32_t>(s.size()));
  pk.pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
}

void packBin(Packer& pk, std::string_view s) {
  pk.pack_bin(static_cast<uint32_t>(s.size()));
  pk.pack_bin_body(s.data(), static_cast<uint32_t>(s.size()));
}

void packStrings(Packer& pk, const std::vector<std::string>& v) {
  pk.pack_array(static_cast<uint32_t>(v.size()));
  for (const auto& s : v) packStr(pk, s);
}

void packAcl(Packer& pk, const std::vector<Acl>& acl) {
  pk.pack_array(static_cast<uint32_t>(acl.size()));
  for (const Acl& a : acl) {
    pk.pack_array(3);
    pk.pack(a.perms);
    packStr(pk, a.id.scheme);
    packStr(pk, a.id.id);
  }
}

void packStat(Packer& pk, const Stat& s) {
  pk.pack_array(11);
  pk.pack(s.czxid);
  pk.pack(s.mzxid);
  pk.pack(s.ctime);
  pk.pack(s.mtime);
  pk.pack(s.version);
  pk.pack(s.cversion);
  pk.pack(s.aversion);
  pk.pack(s.ephemeral_owner);
  pk.pack(s.data_length);
  pk.pack(s.num_children);
  pk.pack(s.pzxid);
}

void packOp(Packer& pk, const Op& op) {
  uint32_t n = 1;
  n += !op.path.empty();
  n += !op.data.empty();
  n += !op.acl.empty();
  n += op.version != -1;
  n += op.mode != CreateMode::kPersistent;
  n += op.ttl_ms != 0;
  n += op.watch;
  n += op.watch_mode != AddWatchMode::kPersistent;
  n += op.watcher_type != WatcherType::kAny;
  n += !op.scheme.empty();
  n += !op.auth.empty();
  n += op.relative_zxid != 0;
  n += !op.data_watches.empty();
  n += !op.exist_watches.empty();
  n += !op.child_watches.empty();
  n += !op.persistent_watches.empty();
  n += !op.persistent_recursive_watches.empty();
  pk.pack_map(n);
  pk.pack(uint32_t{kOpCode});
  pk.pack(static_cast<int32_t>(op.op));
  if (!op.path.empty()) pk.pack(uint32_t{kOpPath}), packStr(pk, op.path);
  if (!op.data.empty()) pk.pack(uint32_t{kOpData}), packBin(pk, op.data);
  if (!op.acl.empty()) pk.pack(uint32_t{kOpAcl}), packAcl(pk, op.acl);
  if (op.version != -1) pk.pack(uint32_t{kOpVersion}), pk.pack(op.version);
  if (op.mode != CreateMode::kPersistent)
    pk.pack(uint32_t{kOpMode}), pk.pack(static_cast<int32_t>(op.mode));
  if (op.ttl_ms != 0) pk.pack(uint32_t{kOpTtl}), pk.pack(op.ttl_ms);
  if (op.watch) pk.pack(uint32_t{kOpWatch}), pk.pack_true();
  if (op.watch_mode != AddWatchMode::kPersistent)
    pk.pack(uint32_t{kOpWatchMode}), pk.pack(static_cast<int32_t>(op.watch_mode));
  if (op.watcher_type != WatcherType::kAny)
    pk.pack(uint32_t{kOpWatcherType}), pk.pack(static_cast<int32_t>(op.watcher_type));
  if (!op.scheme.empty()) pk.pack(uint32_t{kOpScheme}), packStr(pk, op.scheme);
  if (!op.auth.empty()) pk.pack(uint32_t{kOpAuth}), packBin(pk, op.auth);
  if (op.relative_zxid != 0) pk.pack(uint32_t{kOpRelativeZxid}), pk.pack(op.relative_zxid);
  if (!op.data_watches.empty()) pk.pack(uint32_t{kOpDataWatches}), packStrings(pk, op.data_watches);
  if (!op.exist_watches.empty())
    pk.pack(uint32_t{kOpExistWatches}), packStrings(pk, op.exist_watches);
  if (!op.child_watches.empty())
    pk.pack(uint32_t{kOpChildWatches}), packStrings(pk, op.child_watches);
  if (!op.persistent_watches.empty())
    pk.pack(uint32_t{kOpPersistentWatches}), packStrings(pk, op.persistent_watches);
  if (!op.persistent_recursive_watches.empty())
    pk.pack(uint32_t{kOpRecursiveWatches}), packStrings(pk, op.persistent_recursive_watches);
}

void packResult(Packer& pk, const OpResult& r) {
  uint32_t n = 1;
  n += r.err != ZkError::kOk;
  n += !r.path.empty();
  n += !r.data.empty();
  n += r.has_stat;
  n += !r.children.empty();
  n += !r.acl.empty();
  n += r.count != 0;
  n += !r.ids.empty();
  pk.pack_map(n);
  pk.pack(uint32_t{kResOp});
  pk.pack(static_cast<int32_t>(r.op));
  if (r.err != ZkError::kOk) pk.pack(uint32_t{kResErr}), pk.pack(static_cast<int32_t>(r.err));
  if (!r.path.empty()) pk.pack(uint32_t{kResPath}), packStr(pk, r.path);
  if (!r.data.empty()) pk.pack(uint32_t{kResData}), packBin(pk, r.data);
  if (r.has_stat) pk.pack(uint32_t{kResStat}), packStat(pk, r.stat);
  if (!r.children.empty()) pk.pack(uint32_t{kResChildren}), packStrings(pk, r.children);
  if (!r.acl.empty()) pk.pack(uint32_t{kResAcl}), packAcl(pk, r.acl);
  if (r.count != 0) pk.pack(uint32_t{kResCount}), pk.pack(r.count);
  if (!r.ids.empty()) {
    pk.pack(uint32_t{kResIds});
    pk.pack_array(static_cast<uint32_t>(r.ids.size()));
    for (const Id& id : r.ids) {
      pk.pack_array(2);
      packStr(pk, id.scheme);
      packStr(pk, id.id);
    }
  }
}

// --- decoding ---------------------------------------------------------------------------

// Decoding reports the first problem found and stops; `ok` goes false.
struct Reader {
  std::string* error;
  bool ok = true;

  bool fail(std::string msg) {
    if (ok) *error = std::move(msg);
    ok = false;
    return false;
  }

  bool integer(const msgpack::object& o, const char* field, int64_t lo, int64_t hi, int64_t* out) {
    int64_t v;
    if (o.type == msgpack::type::POSITIVE_INTEGER) {
      if (o.via.u64 > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        return fail(std::string("field '") + field + "' is out of range");
      v = static_cast<int64_t>(o.via.u64);
    } else if (o.type == msgpack::type::NEGATIVE_INTEGER) {
      v = o.via.i64;
    } else {
      return fail(std::string("field '") + field + "' is not an integer");
    }
    if (v < lo || v > hi) return fail(std::string("field '") + field + "' is out of range");
    *out = v;
    return true;
  }
  template <typename T>
  bool number(const msgpack::object& o, const char* field, T* out) {
    int64_t v;
    if (!integer(o, field, std::numeric_limits<T>::min(), std::numeric_limits<T>::max(), &v))
      return false;
    *out = static_cast<T>(v);
    return true;
  }
  // Strings and binaries are both accepted for byte fields.
  bool bytes(const msgpack::object& o, const char* field, std::string* out) {
    if (o.type == msgpack::type::STR) {
      out->assign(o.via.str.ptr, o.via.str.size);
    } else if (o.type == msgpack::type::BIN) {
      out->assign(o.via.bin.ptr, o.via.bin.size);
    } else if (o.type == msgpack::type::NIL) {
      out->clear();
    } else {
      return fail(std::string("field '") + field + "' is not a string");
    }
    return true;
  }
  bool boolean(const msgpack::object& o, const char* field, bool* out) {
    if (o.type != msgpack::type::BOOLEAN)
      return fail(std::string("field '") + field + "' is not a boolean");
    *out = o.via.boolean;
    return true;
  }
  bool array(const msgpack::object& o, const char* field, uint32_t min_size,
             const msgpack::object_array** out) {
    if (o.type != msgpack::type::ARRAY)
      return fail(std::string("field '") + field + "' is not an array");
    if (o.via.array.size < min_size)
      return fail(std::string("field '") + field + "' has too few elements");
    *out = &o.via.array;
    return true;
  }
  bool strings(const msgpack::object& o, const char* field, std::vector<std::string>* out) {
    const msgpack::object_array* a;
    if (!array(o, field, 0, &a)) return false;
    out->resize(a->size);
    for (uint32_t i = 0; i < a->size; ++i)
      if (!bytes(a->ptr[i], field, &(*out)[i])) return false;
    return true;
  }
  bool acl(const msgpack::object& o, std::vector<Acl>* out) {
    const msgpack::object_array* a;
    if (!array(o, "acl", 0, &a)) return false;
    out->resize(a->size);
    for (uint32_t i = 0; i < a->size; ++i) {
      const msgpack::object_array* e;
      if (!array(a->ptr[i], "acl", 3, &e)) return false;
      Acl& acl = (*out)[i];
      if (!number(e->ptr[0], "acl.perms", &acl.perms) ||
          !bytes(e->ptr[1], "acl.scheme", &acl.id.scheme) ||
          !bytes(e->ptr[2], "acl.id", &acl.id.id))
        return false;
    }
    return true;
  }
  bool stat(const msgpack::object& o, Stat* s) {
    const msgpack::object_array* a;
    if (!array(o, "stat", 11, &a)) return false;
    const msgpack::object* p = a->ptr;
    return number(p[0], "stat", &s->czxid) && number(p[1], "stat", &s->mzxid) &&
           number(p[2], "stat", &s->ctime) && number(p[3], "stat", &s->mtime) &&
           number(p[4], "stat", &s->version) && number(p[5], "stat", &s->cversion) &&
           number(p[6], "stat", &s->aversion) && number(p[7], "stat", &s->ephemeral_owner) &&
           number(p[8], "stat", &s->data_length) && number(p[9], "stat", &s->num_children) &&
           number(p[10], "stat", &s->pzxid);
  }
  bool opcode(const msgpack::object& o, OpCode* out) {
    int32_t v;
    if (!number(o, "op", &v)) return false;
    if (!knownOpCode(v)) return fail("unknown opcode " + std::to_string(v));
    *out = static_cast<OpCode>(v);
    return true;
  }
  static bool knownOpCode(int32_t v) {
    return (v >= 0 && v <= 9) || (v >= 11 && v <= 22) || (v >= 100 && v <= 107) || v == -10 ||
           v == -1 || v == -11;
  }

  bool op(const msgpack::object& o, Op* out) {
    if (o.type != msgpack::type::MAP) return fail("operation is not a map");
    bool has_code = false;
    for (uint32_t i = 0; i < o.via.map.size && ok; ++i) {
      const msgpack::object& key = o.via.map.ptr[i].key;
      const msgpack::object& v = o.via.map.ptr[i].val;
      int64_t k;
      if (!integer(key, "operation key", 0, 1 << 20, &k)) return false;
      int32_t n;
      switch (k) {
        case kOpCode:
          has_code = opcode(v, &out->op);
          break;
        case kOpPath:
          bytes(v, "path", &out->path);
          break;
        case kOpData:
          bytes(v, "data", &out->data);
          break;
        case kOpAcl:
          acl(v, &out->acl);
          break;
        case kOpVersion:
          number(v, "version", &out->version);
          break;
        case kOpMode:
          if (number(v, "mode", &n)) {
            if (n < 0 || n > 6) return fail("field 'mode' is out of range");
            out->mode = static_cast<CreateMode>(n);
          }
          break;
        case kOpTtl:
          number(v, "ttl", &out->ttl_ms);
          break;
        case kOpWatch:
          boolean(v, "watch", &out->watch);
          break;
        case kOpWatchMode:
          if (number(v, "watch_mode", &n)) {
            if (n < 0 || n > 1) return fail("field 'watch_mode' is out of range");
            out->watch_mode = static_cast<AddWatchMode>(n);
          }
          break;
        case kOpWatcherType:
          if (number(v, "watcher_type", &n)) {
            if (n < 1 || n > 3) return fail("field 'watcher_type' is out of range");
            out->watcher_type = static_cast<WatcherType>(n);
          }
          break;
        case kOpScheme:
          bytes(v, "scheme", &out->scheme);
          break;
        case kOpAuth:
          bytes(v, "auth", &out->auth);
          break;
        case kOpRelativeZxid:
          number(v, "relative_zxid", &out->relative_zxid);
          break;
        case kOpDataWatches:
          strings(v, "data_watches", &out->data_watches);
          break;
        case kOpExistWatches:
          strings(v, "exist_watches", &out->exist_watches);
          break;
        case kOpChildWatches:
          strings(v, "child_watches", &out->child_watches);
          break;
        case kOpPersistentWatches:
          strings(v, "persistent_watches", &out->persistent_watches);
          break;
        case kOpRecursiveWatches:
          strings(v, "persistent_recursive_watches", &out->persistent_recursive_watches);
          break;
        default:
          break;  // a newer peer's field: skipped
      }
    }
    if (ok && !has_code) return fail("operation has no opcode");
    return ok;
  }

  bool result(const msgpack::object& o, OpResult* out) {
    if (o.type != msgpack::type::MAP) return fail("result is not a map");
    for (uint32_t i = 0; i < o.via.map.size && ok; ++i) {
      const msgpack::object& key = o.via.map.ptr[i].key;
      const msgpack::object& v = o.via.map.ptr[i].val;
      int64_t k;
      if (!integer(key, "result key", 0, 1 << 20, &k)) return false;
      int32_t n;
      switch (k) {
        case kResOp:
          opcode(v, &out->op);
          break;
        case kResErr:
          if (number(v, "err", &n)) out->err = static_cast<ZkError>(n);
          break;
        case kResPath:
          bytes(v, "path", &out->path);
          break;
        case kResData:
          bytes(v, "data", &out->data);
          break;
        case kResStat:
          out->has_stat = stat(v, &out->stat);
          break;
        case kResChildren:
          strings(v, "children", &out->children);
          break;
        case kResAcl:
          acl(v, &out->acl);
          break;
        case kResCount:
          number(v, "count", &out->count);
          break;
        case kResIds: {
          const msgpack::object_array* a;
          if (!array(v, "ids", 0, &a)) return false;
          out->ids.resize(a->size);
          for (uint32_t j = 0; j < a->size; ++j) {
            const msgpack::object_array* e;
            if (!array(a->ptr[j], "ids", 2, &e) || !bytes(e->ptr[0], "ids", &out->ids[j].scheme) ||
                !bytes(e->ptr[1], "ids", &out->ids[j].id))
              return false;
          }
          break;
        }
        default:
          break;
      }
    }
    return ok;
  }
};

bool decodeBody(const msgpack::object_array& a, Frame* out, Reader& r) {
  int32_t kind;
  if (!r.number(a.ptr[0], "kind", &kind)) return false;
  const msgpack::object* p = a.ptr;
  switch (kind) {
    case static_cast<int32_t>(FrameKind::kConnect): {
      if (a.size < 7) return r.fail("truncated connect frame");
      out->kind = FrameKind::kConnect;
      ConnectRequest& c = out->connect;
      return r.number(p[1], "protocol_version", &c.protocol_version) &&
             r.number(p[2], "last_zxid_seen", &c.last_zxid_seen) &&
             r.number(p[3], "timeout_ms", &c.timeout_ms) &&
             r.number(p[4], "session_id", &c.session_id) &&
             r.bytes(p[5], "password", &c.password) && r.boolean(p[6], "read_only", &c.read_only);
    }
    case static_cast<int32_t>(FrameKind::kConnectResponse): {
      if (a.size < 7) return r.fail("truncated connect response frame");
      out->kind = FrameKind::kConnectResponse;
      ConnectResponse& c = out->connected;
      int32_t err = 0;
      bool ok =
          r.number(p[1], "err", &err) && r.number(p[2], "protocol_version", &c.protocol_version) &&
          r.number(p[3], "timeout_ms", &c.timeout_ms) &&
          r.number(p[4], "session_id", &c.session_id) && r.bytes(p[5], "password", &c.password) &&
          r.boolean(p[6], "read_only", &c.read_only);
      c.err = static_cast<ZkError>(err);
      return ok;
    }
    case static_cast<int32_t>(FrameKind::kRequest): {
      if (a.size < 3) return r.fail("truncated request frame");
      out->kind = FrameKind::kRequest;
      Request& req = out->request;
      if (!r.number(p[1], "xid", &req.xid) || !r.op(p[2], &req.op)) return false;
      if (a.size >= 4) {
        const msgpack::object_array* ops;
        if (!r.array(p[3], "ops", 0, &ops)) return false;
        req.ops.resize(ops->size);
        for (uint32_t i = 0; i < ops->size; ++i)
          if (!r.op(ops->ptr[i], &req.ops[i])) return false;
      }
      return true;
    }
    case static_cast<int32_t>(FrameKind::kResponse): {
      if (a.size < 5) return r.fail("truncated response frame");
      out->kind = FrameKind::kResponse;
      Response& resp = out->response;
      int32_t err = 0;
      if (!r.number(p[1], "xid", &resp.xid) || !r.number(p[2], "zxid", &resp.zxid) ||
          !r.number(p[3], "err", &err) || !r.result(p[4], &resp.result))
        return false;
      resp.err = static_cast<ZkError>(err);
      if (a.size >= 6) {
        const msgpack::object_array* rs;
        if (!r.array(p[5], "results", 0, &rs)) return false;
        resp.results.resize(rs->size);
        for (uint32_t i = 0; i < rs->size; ++i)
          if (!r.result(rs->ptr[i], &resp.results[i])) return false;
      }
      return true;
    }
    case static_cast<int32_t>(FrameKind::kEvent): {
      if (a.size < 5) return r.fail("truncated event frame");
      out->kind = FrameKind::kEvent;
      WatchEvent& e = out->event;
      int32_t type, state;
      if (!r.number(p[1], "type", &type) || !r.number(p[2], "state", &state) ||
          !r.bytes(p[3], "path", &e.path) || !r.number(p[4], "zxid", &e.zxid))
        return false;
      if (type < -1 || type > 7) return r.fail("field 'type' is out of range");
      e.type = static_cast<EventType>(type);
      e.state = static_cast<KeeperState>(state);
      return true;
    }
    default:
      return r.fail("unknown frame kind " + std::to_string(kind));
  }
}

}  // namespace

std::string encodeConnect(const ConnectRequest& m) {
  std::string out;
  StringSink sink{&out};
  Packer pk(sink);
  pk.pack_array(7);
  pk.pack(static_cast<int32_t>(FrameKind::kConnect));
  pk.pack(m.protocol_version);
  pk.pack(m.last_zxid_seen);
  pk.pack(m.timeout_ms);
  pk.pack(m.session_id);
  packBin(pk, m.password);
  pk.pack(m.read_only);
  return out;
}

std::string encodeConnectResponse(const ConnectResponse& m) {
  std::string out;
  StringSink sink{&out};
  Packer pk(sink);
  pk.pack_array(7);
  pk.pack(static_cast<int32_t>(FrameKind::kConnectResponse));
  pk.pack(static_cast<int32_t>(m.err));
  pk.pack(m.protocol_version);
  pk.pack(m.timeout_ms);
  pk.pack(m.session_id);
  packBin(pk, m.password);
  pk.pack(m.read_only);
  return out;
}

std::string encodeRequest(const Request& m) {
  std::string out;
  StringSink sink{&out};
  Packer pk(sink);
  bool has_ops = !m.ops.empty();
  pk.pack_array(has_ops ? 4 : 3);
  pk.pack(static_cast<int32_t>(FrameKind::kRequest));
  pk.pack(m.xid);
  packOp(pk, m.op);
  if (has_ops) {
    pk.pack_array(static_cast<uint32_t>(m.ops.size()));
    for (const Op& op : m.ops) packOp(pk, op);
  }
  return out;
}

void appendResponse(const Response& m, std::string* out) {
  StringSink sink{out};
  Packer pk(sink);
  bool has_results = !m.results.empty();
  pk.pack_array(has_results ? 6 : 5);
  pk.pack(static_cast<int32_t>(FrameKind::kResponse));
  pk.pack(m.xid);
  pk.pack(m.zxid);
  pk.pack(static_cast<int32_t>(m.err));
  packResult(pk, m.result);
  if (has_results) {
    pk.pack_array(static_cast<uint32_t>(m.results.size()));
    for (const OpResult& r : m.results) packResult(pk, r);
  }
}

std::string encodeResponse(const Response& m) {
  std::string out;
  appendResponse(m, &out);
  return out;
}

void appendEvent(const WatchEvent& m, std::string* out) {
  StringSink sink{out};
  Packer pk(sink);
  pk.pack_array(5);
  pk.pack(static_cast<int32_t>(FrameKind::kEvent));
  pk.pack(static_cast<int32_t>(m.type));
  pk.pack(static_cast<int32_t>(m.state));
  packStr(pk, m.path);
  pk.pack(m.zxid);
}

std::string encodeEvent(const WatchEvent& m) {
  std::string out;
  appendEvent(m, &out);
  return out;
}

bool decodeFrame(std::string_view bytes, Frame* out, std::string* error) {
  std::string ignored;
  if (error == nullptr) error = &ignored;
  *out = Frame{};
  if (bytes.empty()) {
    *error = "empty frame";
    return false;
  }
  // Bounds on what a declared length may make the decoder allocate: a hostile frame must not
  // make it reserve gigabytes before it notices the bytes are missing.
  const size_t n = bytes.size();
  msgpack::unpack_limit limit(/*array=*/n, /*map=*/n, /*str=*/n, /*bin=*/n, /*ext=*/0,
                              /*depth=*/8);
  // One zone per thread, emptied after each frame: a decode used to allocate and free a
  // fresh 8 KB zone, a visible share of a busy server's malloc time.
  thread_local msgpack::zone zone;
  struct EmptyOnExit {
    msgpack::zone& z;
    ~EmptyOnExit() { z.clear(); }
  } empty_on_exit{zone};
  try {
    size_t offset = 0;
    msgpack::object root =
        msgpack::unpack(zone, bytes.data(), bytes.size(), offset, nullptr, nullptr, limit);
    if (offset != bytes.size()) {
      *error = "trailing bytes after frame";
      return false;
    }
    if (root.type != msgpack::type::ARRAY || root.via.array.size == 0) {
      *error = "frame is not a non-empty array";
      return false;
    }
    Reader r{error};
    return decodeBody(root.via.array, out, r);
  } catch (const msgpack::insufficient_bytes&) {
    *error = "truncated frame";
  } catch (const std::exception& e) {
    *error = std::string("malformed frame: ") + e.what();
  } catch (...) {
    *error = "malformed frame";
  }
  return false;
}

}  // namespace corral
