// StateMachine: construction, queries and snapshots. prepare.cpp, apply.cpp and read.cpp
// hold the request paths.
#include "state/state_machine.h"

#include <algorithm>
#include <cstdio>

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
void StateMachine::reserveNodes(size_t more) {
  impl_->tree.nodes.reserve(impl_->tree.nodes.size() + more);
}
size_t StateMachine::watchCount() const {
  return impl_->watches.count();
}

std::string StateMachine::describe(const std::string& question) const {
  const DataTree& t = impl_->tree;
  auto hex = [](int64_t v) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "0x%llx", static_cast<unsigned long long>(v));
    return std::string(buf);
  };
  std::string out;
  if (question == "stats") {
    size_t ephemerals = 0, data_bytes = 0;
    for (const auto& [id, rec] : t.sessions) ephemerals += rec.ephemerals.size();
    for (const auto& [path, n] : t.nodes) data_bytes += path.size() + n.data().size();
    auto watchers = impl_->watches.bySession();
    size_t watched_paths = 0;
    for (const auto& [s, paths] : watchers) watched_paths += paths.size();
    out += "znode_count " + std::to_string(t.nodes.size()) + "\n";
    out += "watch_count " + std::to_string(impl_->watches.count()) + "\n";
    out += "watching_sessions " + std::to_string(watchers.size()) + "\n";
    out += "watched_paths " + std::to_string(watched_paths) + "\n";
    out += "ephemerals_count " + std::to_string(ephemerals) + "\n";
    out += "session_count " + std::to_string(t.sessions.size()) + "\n";
    out += "approximate_data_size " + std::to_string(data_bytes) + "\n";
    out += "last_zxid " + std::to_string(t.last_zxid) + "\n";
  } else if (question == "watches") {
    for (const auto& [session, paths] : impl_->watches.bySession()) {
      out += hex(session) + "\n";
      for (const std::string& p : paths) out += "\t" + p + "\n";
    }
  } else if (question == "sessions") {
    for (const auto& [id, rec] : t.sessions) {
      out += hex(id) + " " + std::to_string(rec.info.timeout_ms) + "\n";
      for (const std::string& p : rec.ephemerals) out += "\t" + p + "\n";
    }
  }
  return out;
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
  // Nodes come depth first, so a node's parent is almost always the node before it or that
  // node's parent, and almost every node has the ACL of the one before it: both are
  // remembered instead of looked up (a restart spends its time here).
  std::string_view prev_path, prev_parent_path, prev_acl;
  Node* prev = nullptr;
  Node* prev_parent = nullptr;
  uint32_t prev_acl_id = 0;
  for (uint32_t i = 0; i < count && r.ok(); ++i) {
    std::string path(r.view());
    Node n;
    std::string_view data = r.view();
    std::string_view acl = r.view();
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
    if (!pathError(path).empty()) {
      *error = "corrupt node record for " + path;
      return false;
    }
    if (prev != nullptr && acl == prev_acl) {
      t.acls.addRef(prev_acl_id);
      n.acl = prev_acl_id;
    } else {
      std::vector<Acl> acl_list;
      if (!decodeAcl(acl, &acl_list)) {
        *error = "corrupt node record for " + path;
        return false;
      }
      n.acl = t.acls.intern(acl_list);
    }
    if (n.kind() != NodeKind::kPlain) t.containers_and_ttl.insert(path);
    if (path == "/") {
      prev = t.add(path, std::move(n));
      prev_path = t.nodes.find(path)->first;
      prev_parent = nullptr;
      prev_parent_path = {};
      prev_acl = acl;
      prev_acl_id = prev->acl;
      continue;
    }
    std::string_view parent = parentPath(path);
    Node* parent_node = nullptr;
    std::string_view parent_key;
    if (prev != nullptr && parent == prev_path) {
      parent_node = prev;
      parent_key = prev_path;
    } else if (prev_parent != nullptr && parent == prev_parent_path) {
      parent_node = prev_parent;
      parent_key = prev_parent_path;
    } else if (auto it = t.nodes.find(std::string(parent)); it != t.nodes.end()) {
      parent_node = &it->second;
      parent_key = it->first;
    }
    std::string_view key;
    Node* added = t.addUnder(parent_node, path, std::move(n), &key);
    if (added == nullptr) {
      *error = "node " + path + " has no parent in the snapshot";
      return false;
    }
    prev = added;
    prev_path = key;
    prev_parent = parent_node;
    prev_parent_path = parent_key;
    prev_acl = acl;
    prev_acl_id = added->acl;
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
