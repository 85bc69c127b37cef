// StateMachine::prepare*: validation of writes against committed state plus every txn
// prepared before, in ZooKeeper's order of checks (PrepRequestProcessor), producing txns
// that apply() replays without judgement.
#include <cstdio>

#include "state/path_utils.h"
#include "state/state_impl.h"

namespace corral::kernel {
namespace {

bool isCreate(OpCode op) {
  return op == OpCode::kCreate || op == OpCode::kCreate2 || op == OpCode::kCreateContainer ||
         op == OpCode::kCreateTtl;
}

bool isSequential(CreateMode m) {
  return m == CreateMode::kPersistentSequential || m == CreateMode::kEphemeralSequential ||
         m == CreateMode::kPersistentSequentialWithTtl;
}

bool isTtl(CreateMode m) {
  return m == CreateMode::kPersistentWithTtl || m == CreateMode::kPersistentSequentialWithTtl;
}

bool versionMatches(int32_t expected, int32_t actual) {
  return expected == -1 || expected == actual;
}

Txn errorTxn(const Txn& base, ZkError err) {
  Txn t = base;
  t.type = OpCode::kError;
  t.err = err;
  t.fields.clear();
  return t;
}

}  // namespace

std::optional<PendingNode> StateMachine::Impl::view(const std::string& path,
                                                    const PendingMap* local) const {
  if (local != nullptr) {
    auto it = local->find(path);
    if (it != local->end()) {
      if (!it->second.exists) return std::nullopt;
      return it->second;
    }
  }
  auto it = pending.find(path);
  if (it != pending.end()) {
    if (!it->second.exists) return std::nullopt;
    return it->second;
  }
  const Node* n = tree.find(path);
  if (n == nullptr) return std::nullopt;
  PendingNode v;
  v.exists = true;
  v.stat = n->stat;
  v.acl = tree.aclOf(*n);
  return v;
}

void StateMachine::Impl::pendingDelete(const std::string& path, int64_t zxid) {
  std::string parent(parentPath(path));
  if (std::optional<PendingNode> p = view(parent, nullptr)) {
    p->stat.cversion++;
    p->stat.num_children--;
    p->stat.pzxid = zxid;
    p->zxid = zxid;
    remember(parent, std::move(*p));
  }
  PendingNode gone;
  gone.zxid = zxid;
  remember(path, std::move(gone));
}

void StateMachine::Impl::remember(const std::string& path, PendingNode rec) {
  pending_order.emplace_back(rec.zxid, path);
  pending[path] = std::move(rec);
}

ZkError StateMachine::Impl::fixupAcl(const SessionView& who, const std::vector<Acl>& acl,
                                     std::vector<Acl>* out) const {
  if (auth != nullptr) return auth->fixupAcl(acl, who.ids, out);
  if (acl.empty()) return ZkError::kInvalidAcl;  // no registry (tests): taken as given
  *out = acl;
  return ZkError::kOk;
}

bool StateMachine::Impl::sessionLive(int64_t session_id) const {
  if (pending_session_closes.count(session_id) != 0) return false;
  return tree.sessions.count(session_id) != 0 || pending_session_creates.count(session_id) != 0;
}

ZkError StateMachine::Impl::prepareCreate(const SessionView& who, const Op& op, int64_t zxid,
                                          PendingMap* local, Txn* out) {
  CreateMode mode = op.mode;
  if (op.op == OpCode::kCreateContainer) mode = CreateMode::kContainer;
  bool ttl = isTtl(mode);
  if (op.op == OpCode::kCreateTtl) {
    if (!ttl || op.ttl_ms <= 0 || op.ttl_ms > kMaxTtlMs) return ZkError::kBadArguments;
  } else if (ttl) {
    return ZkError::kBadArguments;  // TTL modes only through createTtl
  }
  if (mode == CreateMode::kContainer && isSequential(mode)) return ZkError::kBadArguments;
  const bool sequential = isSequential(mode);
  if (!pathError(sequential ? op.path + "1" : op.path).empty()) return ZkError::kBadArguments;
  if (op.data.size() > limits.max_data_bytes) return ZkError::kBadArguments;

  std::vector<Acl> acl;
  if (ZkError e = fixupAcl(who, op.acl, &acl); e != ZkError::kOk) return e;

  std::string parent(parentPath(sequential ? op.path + "1" : op.path));
  std::optional<PendingNode> parent_node = view(parent, local);
  if (!parent_node) return ZkError::kNoNode;
  if (!allowed(who, parent_node->acl, kPermCreate)) return ZkError::kNoAuth;

  std::string path = op.path;
  if (sequential) {
    char suffix[16];
    std::snprintf(suffix, sizeof(suffix), "%010d", parent_node->stat.cversion);
    path += suffix;
  }
  if (view(path, local)) return ZkError::kNodeExists;
  if (isSessionOwner(parent_node->stat.ephemeral_owner)) return ZkError::kNoChildrenForEphemerals;

  int64_t owner = 0;
  NodeKind kind = NodeKind::kPlain;
  if (mode == CreateMode::kEphemeral || mode == CreateMode::kEphemeralSequential) {
    if (who.session_id == 0) return ZkError::kBadArguments;
    owner = who.session_id;
  } else if (mode == CreateMode::kContainer) {
    owner = kContainerOwner;
    kind = NodeKind::kContainer;
  } else if (ttl) {
    owner = ttlOwner(op.ttl_ms);
    kind = NodeKind::kTtl;
  }

  PendingNode& p = (*local)[parent];
  p = *parent_node;
  p.stat.cversion++;
  p.stat.num_children++;
  p.stat.pzxid = zxid;
  p.zxid = zxid;
  PendingNode& c = (*local)[path];
  c = PendingNode{};
  c.exists = true;
  c.stat.czxid = c.stat.mzxid = c.stat.pzxid = zxid;
  c.stat.ephemeral_owner = owner;
  c.stat.data_length = static_cast<int32_t>(op.data.size());
  c.acl = acl;
  c.zxid = zxid;

  out->type =
      op.op == OpCode::kCreateContainer || op.op == OpCode::kCreateTtl || op.op == OpCode::kCreate2
          ? op.op
          : OpCode::kCreate;
  out->fields = {path,
                 op.data,
                 encodeAcl(acl),
                 intField(owner),
                 intField(static_cast<int32_t>(kind)),
                 intField(ttl ? op.ttl_ms : 0)};
  return ZkError::kOk;
}

ZkError StateMachine::Impl::prepareDelete(const SessionView& who, const Op& op, int64_t zxid,
                                          PendingMap* local, Txn* out) {
  if (!pathError(op.path).empty() || op.path == "/") return ZkError::kBadArguments;
  std::string parent(parentPath(op.path));
  std::optional<PendingNode> parent_node = view(parent, local);
  std::optional<PendingNode> node = view(op.path, local);
  if (!parent_node || !node) return ZkError::kNoNode;
  if (!allowed(who, parent_node->acl, kPermDelete)) return ZkError::kNoAuth;
  if (!versionMatches(op.version, node->stat.version)) return ZkError::kBadVersion;
  if (node->stat.num_children > 0) return ZkError::kNotEmpty;

  PendingNode& p = (*local)[parent];
  p = *parent_node;
  p.stat.cversion++;
  p.stat.num_children--;
  p.stat.pzxid = zxid;
  p.zxid = zxid;
  PendingNode& gone = (*local)[op.path];
  gone = PendingNode{};
  gone.zxid = zxid;
  out->type = OpCode::kDelete;
  out->fields = {op.path};
  return ZkError::kOk;
}

ZkError StateMachine::Impl::prepareSetData(const SessionView& who, const Op& op, int64_t zxid,
                                           int64_t time_ms, PendingMap* local, Txn* out) {
  if (!pathError(op.path).empty()) return ZkError::kBadArguments;
  std::optional<PendingNode> node = view(op.path, local);
  if (!node) return ZkError::kNoNode;
  if (!allowed(who, node->acl, kPermWrite)) return ZkError::kNoAuth;
  if (op.data.size() > limits.max_data_bytes) return ZkError::kBadArguments;
  if (!versionMatches(op.version, node->stat.version)) return ZkError::kBadVersion;
  PendingNode& n = (*local)[op.path];
  n = *node;
  n.stat.version++;
  n.stat.mzxid = zxid;
  n.stat.mtime = time_ms;
  n.stat.data_length = static_cast<int32_t>(op.data.size());
  n.zxid = zxid;
  out->type = OpCode::kSetData;
  out->fields = {op.path, op.data};
  return ZkError::kOk;
}

ZkError StateMachine::Impl::prepareSetAcl(const SessionView& who, const Op& op, int64_t zxid,
                                          PendingMap* local, Txn* out) {
  if (!pathError(op.path).empty()) return ZkError::kBadArguments;
  std::optional<PendingNode> node = view(op.path, local);
  if (!node) return ZkError::kNoNode;
  if (!allowed(who, node->acl, kPermAdmin)) return ZkError::kNoAuth;
  std::vector<Acl> acl;
  if (ZkError e = fixupAcl(who, op.acl, &acl); e != ZkError::kOk) return e;
  if (!versionMatches(op.version, node->stat.aversion)) return ZkError::kBadVersion;
  PendingNode& n = (*local)[op.path];
  n = *node;
  n.stat.aversion++;
  n.acl = acl;
  n.zxid = zxid;
  out->type = OpCode::kSetAcl;
  out->fields = {op.path, encodeAcl(acl)};
  return ZkError::kOk;
}

ZkError StateMachine::Impl::prepareCheck(const SessionView& who, const Op& op, PendingMap* local,
                                         Txn* out) {
  if (!pathError(op.path).empty()) return ZkError::kBadArguments;
  std::optional<PendingNode> node = view(op.path, local);
  if (!node) return ZkError::kNoNode;
  if (!allowed(who, node->acl, kPermRead)) return ZkError::kNoAuth;
  if (!versionMatches(op.version, node->stat.version)) return ZkError::kBadVersion;
  out->type = OpCode::kCheck;
  out->fields = {op.path};
  return ZkError::kOk;
}

ZkError StateMachine::Impl::prepareOp(const SessionView& who, const Op& op, int64_t zxid,
                                      int64_t time_ms, PendingMap* local, Txn* out) {
  if (isCreate(op.op)) return prepareCreate(who, op, zxid, local, out);
  switch (op.op) {
    case OpCode::kDelete:
      return prepareDelete(who, op, zxid, local, out);
    case OpCode::kSetData:
      return prepareSetData(who, op, zxid, time_ms, local, out);
    case OpCode::kSetAcl:
      return prepareSetAcl(who, op, zxid, local, out);
    case OpCode::kCheck:
      return prepareCheck(who, op, local, out);
    default:
      return ZkError::kUnimplemented;
  }
}

Txn StateMachine::prepare(const SessionView& who, const Request& request, int64_t zxid,
                          int64_t time_ms) {
  Impl& m = *impl_;
  Txn txn;
  txn.zxid = zxid;
  txn.time_ms = time_ms;
  txn.session_id = who.session_id;
  txn.xid = request.xid;
  txn.type = request.op.op;
  if (who.session_id != 0 && !m.sessionLive(who.session_id))
    return errorTxn(txn, ZkError::kSessionExpired);

  PendingMap local;
  if (request.op.op != OpCode::kMulti) {
    if (request.op.op == OpCode::kSetAcl || request.op.op == OpCode::kCheck ||
        request.op.op == OpCode::kDelete || request.op.op == OpCode::kSetData ||
        isCreate(request.op.op)) {
      ZkError e = m.prepareOp(who, request.op, zxid, time_ms, &local, &txn);
      if (e != ZkError::kOk) return errorTxn(txn, e);
    } else {
      return errorTxn(txn, ZkError::kUnimplemented);
    }
  } else {
    // All or nothing: every op sees the effects of the ops before it; the first failure
    // discards them all.
    std::vector<std::string> subs;
    std::vector<ZkError> codes(request.ops.size(), ZkError::kOk);
    size_t failed = request.ops.size();
    for (size_t i = 0; i < request.ops.size(); ++i) {
      const Op& op = request.ops[i];
      Txn sub;
      sub.zxid = zxid;
      sub.time_ms = time_ms;
      sub.session_id = who.session_id;
      ZkError e = (isCreate(op.op) || op.op == OpCode::kDelete || op.op == OpCode::kSetData ||
                   op.op == OpCode::kCheck)
                      ? m.prepareOp(who, op, zxid, time_ms, &local, &sub)
                      : ZkError::kBadArguments;
      if (e != ZkError::kOk) {
        codes[i] = e;
        failed = i;
        break;
      }
      subs.push_back(encodeTxn(sub));
    }
    if (failed < request.ops.size()) {
      Txn err = errorTxn(txn, codes[failed]);
      for (size_t i = 0; i < request.ops.size(); ++i) {
        ZkError code = i < failed    ? ZkError::kOk
                       : i == failed ? codes[failed]
                                     : ZkError::kRuntimeInconsistency;
        err.fields.push_back(intField(static_cast<int32_t>(code)));
      }
      return err;
    }
    txn.type = OpCode::kMulti;
    txn.fields = std::move(subs);
  }
  for (auto& [path, rec] : local) m.remember(path, std::move(rec));
  return txn;
}

Txn StateMachine::prepareCreateSession(int64_t session_id, int32_t timeout_ms, std::string password,
                                       int64_t zxid, int64_t time_ms) {
  Txn txn;
  txn.zxid = zxid;
  txn.time_ms = time_ms;
  txn.session_id = session_id;
  txn.type = OpCode::kCreateSession;
  if (impl_->sessionLive(session_id)) {
    txn.type = OpCode::kError;
    txn.err = ZkError::kSessionMoved;  // the id is taken: the caller must pick another
    return txn;
  }
  txn.fields = {intField(timeout_ms), std::move(password)};
  impl_->pending_session_creates[session_id] = zxid;
  return txn;
}

Txn StateMachine::prepareCloseSession(int64_t session_id, int64_t zxid, int64_t time_ms) {
  Impl& m = *impl_;
  Txn txn;
  txn.zxid = zxid;
  txn.time_ms = time_ms;
  txn.session_id = session_id;
  txn.type = OpCode::kCloseSession;
  if (!m.sessionLive(session_id)) {
    txn.type = OpCode::kError;
    txn.err = ZkError::kSessionExpired;
    return txn;
  }
  // The ephemerals this close will delete, as the overlay sees them, so that txns prepared
  // after it (e.g. sequential creates in the same parent) see the parents' new cversion.
  std::set<std::string> doomed;
  auto it = m.tree.sessions.find(session_id);
  if (it != m.tree.sessions.end()) doomed = it->second.ephemerals;
  for (const auto& [path, rec] : m.pending) {
    if (rec.exists && rec.stat.ephemeral_owner == session_id) doomed.insert(path);
    if (!rec.exists) doomed.erase(path);
  }
  for (const std::string& path : doomed) {
    m.pendingDelete(path, zxid);
  }
  m.pending_session_closes[session_id] = zxid;
  return txn;
}

Txn StateMachine::prepareDeleteContainer(const std::string& path, int64_t zxid, int64_t time_ms) {
  Impl& m = *impl_;
  Txn txn;
  txn.zxid = zxid;
  txn.time_ms = time_ms;
  txn.type = OpCode::kDeleteContainer;
  std::optional<PendingNode> node = m.view(path, nullptr);
  const Node* committed = m.tree.find(path);
  if (!node || committed == nullptr || committed->kind() == NodeKind::kPlain) {
    txn.type = OpCode::kError;
    txn.err = ZkError::kNoNode;
    return txn;
  }
  if (node->stat.num_children > 0) {
    txn.type = OpCode::kError;
    txn.err = ZkError::kNotEmpty;
    return txn;
  }
  m.pendingDelete(path, zxid);
  txn.fields = {path};
  return txn;
}

}  // namespace corral::kernel
