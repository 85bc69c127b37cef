// StateMachine: construction, queries and snapshots. prepare.cpp, apply.cpp and read.cpp
// hold the request paths.
#include "state/state_machine.h"

#include <algorithm>

#include "state/bytes.h"
#include "state/path_utils.h"
#include "state/state_impl.h"

namespace corral::kernel {

StateMachine::StateMachine(const AuthRegistry* auth, StateLimits limits)
    : impl_(std::make_unique<Impl>(auth, limits)) {}
StateMachine::~StateMachine() = default;

int64_t StateMachine::lastZxid() const {
  return impl_->tree.last_zxid;
}

const SessionInfo* StateMachine::session(int64_t session_id) const {
  auto it = impl_->tree.sessions.find(session_id);
  return it == impl_->tree.sessions.end() ? nullptr : &it->second.info;
}

std::vector<SessionInfo> StateMachine::sessions() const {
  std::vector<SessionInfo> out;
  for (const auto& [id, rec] : impl_->tree.sessions) out.push_back(rec.info);
  return out;
}

size_t StateMachine::nodeCount() const {
  return impl_->tree.nodes.size();
}
size_t StateMachine::watchCount() const {
  return impl_->watches.count();
}

namespace {
constexpr uint32_t kSnapshotMagic = 0x43524c53;  // "CRLS"
constexpr uint8_t kSnapshotFormat = 1;
}  // namespace

std::string StateMachine::snapshot() const {
  const DataTree& t = impl_->tree;
  std::string out;
  ByteWriter w(&out);
  w.u32(kSnapshotMagic);
  w.u8(kSnapshotFormat);
  w.i64(t.last_zxid);
  // Depth first from the root, so a parent is always written before its children; the
  // children lists are sorted, so the order is the paths' sorted order, with no sort.
  out.reserve(t.nodes.size() * 160);
  std::vector<std::string> encoded_acls;  // by ACL id, encoded once
  w.u32(static_cast<uint32_t>(t.nodes.size()));
  std::vector<std::string> stack = {"/"};
  while (!stack.empty()) {
    std::string path = std::move(stack.back());
    stack.pop_back();
    const Node* n = t.find(path);
    if (n == nullptr) continue;
    const Stat& s = n->stat;
    if (n->acl >= encoded_acls.size()) encoded_acls.resize(n->acl + 1);
    if (encoded_acls[n->acl].empty()) encoded_acls[n->acl] = encodeAcl(t.aclOf(*n));
    w.bytes(path);
    w.bytes(n->data());
    w.bytes(encoded_acls[n->acl]);
    for (int64_t v : {s.czxid, s.mzxid, s.ctime, s.mtime, s.ephemeral_owner, s.pzxid}) w.i64(v);
    for (int32_t v : {s.version, s.cversion, s.aversion}) w.i32(v);
    w.i32(static_cast<int32_t>(n->kind()));
    w.i64(n->ttlMs());
    const auto& children = n->children();
    for (auto it = children.rbegin(); it != children.rend(); ++it)
      stack.push_back(childPath(path, *it));
  }
  w.u32(static_cast<uint32_t>(t.sessions.size()));
  for (const auto& [id, rec] : t.sessions) {
    w.i64(id);
    w.i32(rec.info.timeout_ms);
    w.bytes(rec.info.password);
  }
  return out;
}

bool StateMachine::restore(std::string_view snapshot, std::string* error) {
  ByteReader r(snapshot);
  if (r.u32() != kSnapshotMagic || r.u8() != kSnapshotFormat || !r.ok()) {
    *error = "not a corral snapshot (bad magic or format)";
    return false;
  }
  DataTree t;
  t.nodes.clear();
  t.acls = AclTable();
  t.last_zxid = r.i64();
  uint32_t count = r.count(4 + 4 + 4 + 8 * 6 + 4 * 4 + 8);
  t.nodes.reserve(count);
  for (uint32_t i = 0; i < count && r.ok(); ++i) {
    std::string path = r.bytes();
    Node n;
    std::string data = r.bytes();
    std::string acl = r.bytes();
    Stat& s = n.stat;
    s.czxid = r.i64();
    s.mzxid = r.i64();
    s.ctime = r.i64();
    s.mtime = r.i64();
    s.ephemeral_owner = r.i64();
    s.pzxid = r.i64();
    s.version = r.i32();
    s.cversion = r.i32();
    s.aversion = r.i32();
    r.i32();  // kind and TTL: recorded for readers of the format; ephemeralOwner has both
    r.i64();
    n.setData(data);
    if (!r.ok()) break;
    std::vector<Acl> acl_list;
    if (!decodeAcl(acl, &acl_list) || !pathError(path).empty()) {
      *error = "corrupt node record for " + path;
      return false;
    }
    n.acl = t.acls.intern(acl_list);
    if (n.kind() != NodeKind::kPlain) t.containers_and_ttl.insert(path);
    if (t.add(path, std::move(n)) == nullptr) {
      *error = "node " + path + " has no parent in the snapshot";
      return false;
    }
  }
  uint32_t sessions = r.count(16);
  for (uint32_t i = 0; i < sessions && r.ok(); ++i) {
    SessionRecord rec;
    rec.info.session_id = r.i64();
    rec.info.timeout_ms = r.i32();
    rec.info.password = r.bytes();
    t.sessions[rec.info.session_id] = std::move(rec);
  }
  if (!r.ok() || !r.done() || t.find("/") == nullptr) {
    *error = "truncated or corrupt snapshot";
    return false;
  }
  for (const auto& [path, n] : t.nodes) {
    if (!isSessionOwner(n.stat.ephemeral_owner)) continue;
    auto s = t.sessions.find(n.stat.ephemeral_owner);
    if (s != t.sessions.end()) s->second.ephemerals.insert(path);
  }
  impl_->tree = std::move(t);
  impl_->watches = WatchManager();
  discardPending();
  return true;
}

}  // namespace corral::kernel
