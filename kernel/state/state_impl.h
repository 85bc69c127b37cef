// StateMachine::Impl, shared by the files that implement its parts (prepare, apply, read,
// snapshot).
#pragma once

#include <deque>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>

#include "state/auth_registry.h"
#include "state/data_tree.h"
#include "state/state_machine.h"
#include "state/watch_manager.h"

namespace corral::kernel {

// What a prepared-but-unapplied txn will have done to one path (ZooKeeper's ChangeRecord).
struct PendingNode {
  bool exists = false;
  Stat stat;
  std::vector<Acl> acl;
  int64_t zxid = 0;  // the txn that produced this record
};

using PendingMap = std::unordered_map<std::string, PendingNode>;

struct StateMachine::Impl {
  const AuthRegistry* auth;
  StateLimits limits;
  DataTree tree;
  WatchManager watches;

  // Overlay of prepared txns over the committed tree, forgotten as txns apply.
  PendingMap pending;
  // Every record put in `pending`, in the order of its txn's zxid, so that applying a txn
  // forgets what it produced without scanning the whole overlay: with 100k writes in
  // flight that scan per applied txn stalled the kernel for minutes.
  std::deque<std::pair<int64_t, std::string>> pending_order;
  std::map<int64_t, int64_t> pending_session_creates;  // session -> zxid
  std::map<int64_t, int64_t> pending_session_closes;   // session -> zxid

  Impl(const AuthRegistry* a, StateLimits l) : auth(a), limits(l) {}

  // The node as committed state plus pending changes (plus `local`, a multi's own changes)
  // see it; nullopt when it does not exist.
  std::optional<PendingNode> view(const std::string& path, const PendingMap* local) const;
  bool sessionLive(int64_t session_id) const;
  // Records in the overlay that a server-side txn (close, cleanup) deletes `path`.
  void pendingDelete(const std::string& path, int64_t zxid);
  // Puts `rec` (the effect of txn rec.zxid) in the overlay for `path`.
  void remember(const std::string& path, PendingNode rec);

  // --- prepare helpers (prepare.cpp): each validates one op against the overlay view,
  // records its effect in `local` and fills the sub-txn's type and fields.
  ZkError prepareOp(const SessionView& who, const Op& op, int64_t zxid, int64_t time_ms,
                    PendingMap* local, Txn* out);
  ZkError prepareCreate(const SessionView& who, const Op& op, int64_t zxid, PendingMap* local,
                        Txn* out);
  ZkError prepareDelete(const SessionView& who, const Op& op, int64_t zxid, PendingMap* local,
                        Txn* out);
  ZkError prepareSetData(const SessionView& who, const Op& op, int64_t zxid, int64_t time_ms,
                         PendingMap* local, Txn* out);
  ZkError prepareSetAcl(const SessionView& who, const Op& op, int64_t zxid, PendingMap* local,
                        Txn* out);
  ZkError prepareCheck(const SessionView& who, const Op& op, PendingMap* local, Txn* out);
  // Validates an ACL for create/setAcl and expands "auth" (AuthRegistry::fixupAcl).
  ZkError fixupAcl(const SessionView& who, const std::vector<Acl>& acl,
                   std::vector<Acl>* out) const;
  bool allowed(const SessionView& who, const std::vector<Acl>& acl, int32_t perm) const {
    return auth == nullptr || auth->allowed(acl, who.ids, who.super_user, perm);
  }

  // --- apply helpers (apply.cpp)
  void applyOne(const Txn& txn, OpResult* result, SessionEvents* events);
  ZkError applyCreate(const Txn& txn, OpResult* result, SessionEvents* events);
  ZkError applyDelete(const std::string& path, int64_t zxid, SessionEvents* events);
  void forgetPending(int64_t zxid);
};

}  // namespace corral::kernel
