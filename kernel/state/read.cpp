// StateMachine::read: the read-only requests, answered from committed state, and the
// watches they register or remove.
#include <algorithm>

#include "state/path_utils.h"
#include "state/state_impl.h"

namespace corral::kernel {
namespace {

using Kind = WatchManager::Kind;

// One read op; used alone and inside multiRead.
OpResult readOne(StateMachine::Impl& m, const SessionView& who, const Op& op,
                 SessionEvents* events) {
  OpResult r;
  r.op = op.op;
  auto bad_path = [&] { return !pathError(op.path).empty(); };
  // The node the op reads, if the path is valid, it exists and `perm` is granted; otherwise
  // nullptr with the error set.
  auto lookup = [&](int32_t perm) -> const Node* {
    if (bad_path()) {
      r.err = ZkError::kBadArguments;
      return nullptr;
    }
    const Node* n = m.tree.find(op.path);
    if (n == nullptr) {
      r.err = ZkError::kNoNode;
    } else if (!m.allowed(who, m.tree.aclOf(*n), perm)) {
      r.err = ZkError::kNoAuth;
      n = nullptr;
    }
    return n;
  };
  switch (op.op) {
    case OpCode::kExists: {
      if (bad_path()) {
        r.err = ZkError::kBadArguments;
        break;
      }
      const Node* n = m.tree.find(op.path);
      if (n == nullptr) {
        r.err = ZkError::kNoNode;
        if (op.watch) m.watches.add(Kind::kExist, op.path, who.session_id);
        break;
      }
      r.stat = n->stat;
      r.has_stat = true;
      if (op.watch) m.watches.add(Kind::kData, op.path, who.session_id);
      break;
    }
    case OpCode::kGetData: {
      const Node* n = lookup(kPermRead);
      if (n == nullptr) break;
      r.data = std::string(n->data());
      r.stat = n->stat;
      r.has_stat = true;
      if (op.watch) m.watches.add(Kind::kData, op.path, who.session_id);
      break;
    }
    case OpCode::kGetChildren:
    case OpCode::kGetChildren2: {
      const Node* n = lookup(kPermRead);
      if (n == nullptr) break;
      r.children.assign(n->children().begin(), n->children().end());
      r.stat = n->stat;
      r.has_stat = true;
      if (op.watch) m.watches.add(Kind::kChild, op.path, who.session_id);
      break;
    }
    case OpCode::kGetAcl: {
      const Node* n = lookup(kPermRead | kPermAdmin);
      if (n == nullptr) break;
      r.acl = m.tree.aclOf(*n);
      r.stat = n->stat;
      r.has_stat = true;
      break;
    }
    case OpCode::kGetAllChildrenNumber: {
      if (lookup(kPermRead) != nullptr) r.count = m.tree.descendants(op.path);
      break;
    }
    case OpCode::kGetEphemerals: {
      auto s = m.tree.sessions.find(who.session_id);
      if (s == m.tree.sessions.end()) break;
      std::string prefix = op.path.empty() ? "/" : op.path;
      for (const std::string& p : s->second.ephemerals) {
        if (prefix == "/" || p.compare(0, prefix.size(), prefix) == 0) r.children.push_back(p);
      }
      break;
    }
    case OpCode::kWhoAmI: {
      if (who.ids != nullptr) r.ids = *who.ids;
      break;
    }
    case OpCode::kSync: {
      r.path = op.path;
      break;
    }
    case OpCode::kAddWatch: {
      if (bad_path()) {
        r.err = ZkError::kBadArguments;
        break;
      }
      const Node* n = m.tree.find(op.path);
      if (n != nullptr && !m.allowed(who, m.tree.aclOf(*n), kPermRead)) {
        r.err = ZkError::kNoAuth;
        break;
      }
      m.watches.add(op.watch_mode == AddWatchMode::kPersistentRecursive ? Kind::kRecursive
                                                                        : Kind::kPersistent,
                    op.path, who.session_id);
      break;
    }
    case OpCode::kRemoveWatches:
    case OpCode::kCheckWatches: {
      if (bad_path()) {
        r.err = ZkError::kBadArguments;
        break;
      }
      bool found = m.watches.remove(op.path, who.session_id, op.watcher_type,
                                    op.op == OpCode::kRemoveWatches);
      if (!found) r.err = ZkError::kNoWatcher;
      break;
    }
    case OpCode::kSetWatches:
    case OpCode::kSetWatches2: {
      // Re-arms a reconnecting client's watches; those that would have fired while it was
      // away fire now (ZooKeeper's DataTree.setWatches).
      auto fire = [&](EventType type, const std::string& path) {
        WatchEvent e;
        e.type = type;
        e.path = path;
        e.zxid = m.tree.last_zxid;
        events->emplace_back(who.session_id, std::move(e));
      };
      for (const std::string& p : op.data_watches) {
        const Node* n = m.tree.find(p);
        if (n == nullptr)
          fire(EventType::kNodeDeleted, p);
        else if (n->stat.mzxid > op.relative_zxid)
          fire(EventType::kNodeDataChanged, p);
        else
          m.watches.add(Kind::kData, p, who.session_id);
      }
      for (const std::string& p : op.exist_watches) {
        if (m.tree.find(p) != nullptr)
          fire(EventType::kNodeCreated, p);
        else
          m.watches.add(Kind::kExist, p, who.session_id);
      }
      for (const std::string& p : op.child_watches) {
        const Node* n = m.tree.find(p);
        if (n == nullptr)
          fire(EventType::kNodeDeleted, p);
        else if (n->stat.pzxid > op.relative_zxid)
          fire(EventType::kNodeChildrenChanged, p);
        else
          m.watches.add(Kind::kChild, p, who.session_id);
      }
      for (const std::string& p : op.persistent_watches)
        m.watches.add(Kind::kPersistent, p, who.session_id);
      for (const std::string& p : op.persistent_recursive_watches)
        m.watches.add(Kind::kRecursive, p, who.session_id);
      break;
    }
    default:
      r.err = ZkError::kUnimplemented;
      break;
  }
  return r;
}

}  // namespace

Applied StateMachine::read(const SessionView& who, const Request& request) {
  Impl& m = *impl_;
  Applied out;
  Response& resp = out.response;
  resp.xid = request.xid;
  resp.zxid = m.tree.last_zxid;
  if (request.op.op == OpCode::kMultiRead) {
    resp.result.op = OpCode::kMultiRead;
    for (const Op& op : request.ops) {
      bool allowed = op.op == OpCode::kGetData || op.op == OpCode::kGetChildren ||
                     op.op == OpCode::kGetChildren2 || op.op == OpCode::kExists;
      if (!allowed) {
        OpResult r;
        r.op = op.op;
        r.err = ZkError::kBadArguments;
        resp.results.push_back(r);
        continue;
      }
      resp.results.push_back(readOne(m, who, op, &out.events));
    }
    return out;
  }
  resp.result = readOne(m, who, request.op, &out.events);
  resp.err = resp.result.err;
  return out;
}

void StateMachine::dropWatches(int64_t session_id) {
  impl_->watches.dropSession(session_id);
}

}  // namespace corral::kernel
