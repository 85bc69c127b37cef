// StateMachine::apply: replays a committed txn on the tree, fires watches, builds the reply.
// Deterministic: everything comes from the txn and the current state.
#include "state/path_utils.h"
#include "state/state_impl.h"

namespace corral::kernel {
namespace {

int64_t fieldInt(const Txn& t, size_t i) {
  int64_t v = 0;
  if (i < t.fields.size()) parseIntField(t.fields[i], &v);
  return v;
}

const std::string& field(const Txn& t, size_t i) {
  static const std::string kEmpty;
  return i < t.fields.size() ? t.fields[i] : kEmpty;
}

}  // namespace

ZkError StateMachine::Impl::applyCreate(const Txn& txn, OpResult* result, SessionEvents* events) {
  // Two lookups (the parent, then the insertion, which also finds an existing node): this is
  // most of replaying a journal at start-up.
  const std::string& path = field(txn, 0);
  std::string parent_path(parentPath(path));
  Node* parent = tree.find(parent_path);
  if (parent == nullptr)
    return tree.find(path) != nullptr ? ZkError::kNodeExists : ZkError::kNoNode;
  Node n;
  n.setData(field(txn, 1));
  int64_t owner = fieldInt(txn, 3);
  n.stat.czxid = n.stat.mzxid = n.stat.pzxid = txn.zxid;
  n.stat.ctime = n.stat.mtime = txn.time_ms;
  n.stat.ephemeral_owner = owner;
  const Stat stat = n.stat;
  const bool special = n.kind() != NodeKind::kPlain;
  bool inserted = false;
  Node* added = tree.addUnder(parent, path, std::move(n), nullptr, &inserted);
  if (!inserted) return ZkError::kNodeExists;
  added->acl = tree.acls.internEncoded(field(txn, 2));
  parent->stat.cversion++;
  parent->stat.pzxid = txn.zxid;
  if (isSessionOwner(owner)) {
    auto s = tree.sessions.find(owner);
    if (s != tree.sessions.end()) s->second.ephemerals.insert(path);
  }
  if (special) tree.containers_and_ttl.insert(path);
  result->path = path;
  result->stat = stat;
  result->has_stat = true;
  watches.nodeCreated(path, txn.zxid, events);
  watches.childrenChanged(parent_path, txn.zxid, events);
  return ZkError::kOk;
}

ZkError StateMachine::Impl::applyDelete(const std::string& path, int64_t zxid,
                                        SessionEvents* events) {
  Node* n = tree.find(path);
  if (n == nullptr || path == "/") return ZkError::kNoNode;
  if (n->hasChildren()) return ZkError::kNotEmpty;
  std::string parent_path(parentPath(path));
  Node* parent = tree.find(parent_path);
  if (parent != nullptr) {
    parent->stat.cversion++;
    parent->stat.pzxid = zxid;
  }
  if (isSessionOwner(n->stat.ephemeral_owner)) {
    auto s = tree.sessions.find(n->stat.ephemeral_owner);
    if (s != tree.sessions.end()) s->second.ephemerals.erase(path);
  }
  tree.containers_and_ttl.erase(path);
  tree.remove(path);
  watches.nodeDeleted(path, zxid, events);
  watches.childrenChanged(parent_path, zxid, events);
  return ZkError::kOk;
}

void StateMachine::Impl::applyOne(const Txn& txn, OpResult* result, SessionEvents* events) {
  result->op = txn.type;
  switch (txn.type) {
    case OpCode::kCreate:
    case OpCode::kCreate2:
    case OpCode::kCreateContainer:
    case OpCode::kCreateTtl:
      result->err = applyCreate(txn, result, events);
      break;
    case OpCode::kDelete:
    case OpCode::kDeleteContainer:
      result->err = applyDelete(field(txn, 0), txn.zxid, events);
      break;
    case OpCode::kSetData: {
      Node* n = tree.find(field(txn, 0));
      if (n == nullptr) {
        result->err = ZkError::kNoNode;
        break;
      }
      n->setData(field(txn, 1));
      n->stat.version++;
      n->stat.mzxid = txn.zxid;
      n->stat.mtime = txn.time_ms;
      result->stat = n->stat;
      result->has_stat = true;
      watches.dataChanged(field(txn, 0), txn.zxid, events);
      break;
    }
    case OpCode::kSetAcl: {
      Node* n = tree.find(field(txn, 0));
      if (n == nullptr) {
        result->err = ZkError::kNoNode;
        break;
      }
      std::vector<Acl> acl;
      decodeAcl(field(txn, 1), &acl);
      uint32_t old_acl = n->acl;
      n->acl = tree.acls.intern(acl);
      tree.acls.release(old_acl);
      n->stat.aversion++;
      result->stat = n->stat;
      result->has_stat = true;
      break;
    }
    case OpCode::kCheck:
      break;
    default:
      result->err = ZkError::kUnimplemented;
      break;
  }
}

void StateMachine::Impl::forgetPending(int64_t zxid) {
  while (!pending_order.empty() && pending_order.front().first <= zxid) {
    auto it = pending.find(pending_order.front().second);
    // A later txn may have replaced the record: that one stays until it applies.
    if (it != pending.end() && it->second.zxid <= zxid) pending.erase(it);
    pending_order.pop_front();
  }
  for (auto* m : {&pending_session_creates, &pending_session_closes}) {
    for (auto it = m->begin(); it != m->end();) {
      it = it->second <= zxid ? m->erase(it) : std::next(it);
    }
  }
}

Applied StateMachine::apply(const Txn& txn) {
  Impl& m = *impl_;
  Applied out;
  Response& resp = out.response;
  resp.xid = txn.xid;
  if (txn.zxid <= m.tree.last_zxid) {
    resp.err = ZkError::kRuntimeInconsistency;
    resp.zxid = m.tree.last_zxid;
    return out;
  }
  m.tree.last_zxid = txn.zxid;
  resp.zxid = txn.zxid;
  resp.result.op = txn.type;

  switch (txn.type) {
    case OpCode::kError: {
      resp.err = txn.err;
      // A failed multi carries one code per op (ZooKeeper's ErrorResult list).
      for (size_t i = 0; i < txn.fields.size(); ++i) {
        OpResult r;
        r.op = OpCode::kError;
        r.err = static_cast<ZkError>(fieldInt(txn, i));
        resp.results.push_back(std::move(r));
      }
      if (!txn.fields.empty()) resp.result.op = OpCode::kMulti;
      break;
    }
    case OpCode::kMulti: {
      resp.result.op = OpCode::kMulti;
      for (const std::string& encoded : txn.fields) {
        Txn sub;
        std::string error;
        OpResult r;
        if (!decodeTxn(encoded, &sub, &error)) {
          r.err = ZkError::kMarshallingError;
        } else {
          sub.zxid = txn.zxid;
          sub.time_ms = txn.time_ms;
          m.applyOne(sub, &r, &out.events);
        }
        if (r.err != ZkError::kOk && resp.err == ZkError::kOk) resp.err = r.err;
        resp.results.push_back(std::move(r));
      }
      break;
    }
    case OpCode::kCreateSession: {
      SessionRecord rec;
      rec.info.session_id = txn.session_id;
      rec.info.timeout_ms = static_cast<int32_t>(fieldInt(txn, 0));
      rec.info.password = field(txn, 1);
      m.tree.sessions[txn.session_id] = std::move(rec);
      break;
    }
    case OpCode::kCloseSession: {
      auto it = m.tree.sessions.find(txn.session_id);
      if (it == m.tree.sessions.end()) {
        resp.err = ZkError::kSessionExpired;
        break;
      }
      std::set<std::string> doomed = it->second.ephemerals;
      for (const std::string& path : doomed) m.applyDelete(path, txn.zxid, &out.events);
      m.tree.sessions.erase(txn.session_id);
      m.watches.dropSession(txn.session_id);
      // Nobody is left to tell about the closed session's own watches.
      std::erase_if(out.events, [&](const auto& e) { return e.first == txn.session_id; });
      break;
    }
    default:
      m.applyOne(txn, &resp.result, &out.events);
      resp.err = resp.result.err;
      break;
  }
  m.forgetPending(txn.zxid);
  return out;
}

void StateMachine::discardPending() {
  impl_->pending.clear();
  impl_->pending_order.clear();
  impl_->pending_session_creates.clear();
  impl_->pending_session_closes.clear();
}

std::vector<std::string> StateMachine::cleanupCandidates(int64_t now_ms) const {
  std::vector<std::string> out;
  for (const std::string& path : impl_->tree.containers_and_ttl) {
    const Node* n = impl_->tree.find(path);
    if (n == nullptr || n->hasChildren()) continue;
    if (n->kind() == NodeKind::kContainer && n->stat.cversion > 0) out.push_back(path);
    if (n->kind() == NodeKind::kTtl && now_ms - n->stat.mtime > n->ttlMs()) out.push_back(path);
  }
  return out;
}

}  // namespace corral::kernel
