// StateMachine: the replicated state of a Corral server (znode tree, session table, watches)
// and the two steps every write takes, exactly as a replicated server needs them:
//
//   prepare(request) -> Txn   on the server that orders writes (standalone: the only one).
//                             Validates against committed state plus every txn prepared but
//                             not yet applied; never mutates committed state.
//   apply(Txn)       -> reply  on every server, in zxid order, after the txn is durable /
//                             committed. Deterministic: zxid and time are fields of the txn.
//
// Reads never wait and see committed state only.
//
// Not thread-safe: owned by the kernel thread. Reads no clock, does no I/O, draws no
// randomness.
#pragma once

#include <corral/proto.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "state/txn.h"

namespace corral::kernel {

class AuthRegistry;

// Who is asking: the session and the identities it has (from the connection and addauth).
struct SessionView {
  int64_t session_id = 0;
  const std::vector<Id>* ids = nullptr;  // may be null: no identities
  bool super_user = false;
};

struct StateLimits {
  size_t max_data_bytes = 1048575;  // larger data: kBadArguments
};

// A committed session, as the replicated state knows it.
struct SessionInfo {
  int64_t session_id = 0;
  int32_t timeout_ms = 0;
  std::string password;
};

// What applying one txn produced.
struct Applied {
  Response response;  // for the session (txn.session_id) that sent the request, if any
  // Watch events to deliver, each to one session, in the order they must be delivered.
  std::vector<std::pair<int64_t, WatchEvent>> events;
};

class StateMachine {
 public:
  StateMachine(const AuthRegistry* auth, StateLimits limits);
  ~StateMachine();
  StateMachine(const StateMachine&) = delete;
  StateMachine& operator=(const StateMachine&) = delete;

  // --- writes: prepare on the ordering server ---

  // A client write (isWriteOp(request.op.op), incl. multi). An invalid request yields an
  // error txn, so its error reply is ordered with the writes around it.
  Txn prepare(const SessionView& who, const Request& request, int64_t zxid, int64_t time_ms);
  Txn prepareCreateSession(int64_t session_id, int32_t timeout_ms, std::string password,
                           int64_t zxid, int64_t time_ms);
  // Closing (client close or expiry): the txn deletes the session's ephemerals.
  Txn prepareCloseSession(int64_t session_id, int64_t zxid, int64_t time_ms);
  // Server-side cleanup of an empty container or an expired TTL node.
  Txn prepareDeleteContainer(const std::string& path, int64_t zxid, int64_t time_ms);

  // Containers that became empty and TTL nodes whose TTL passed, as of now_ms
  // (committed state). The server prepares a delete for each.
  std::vector<std::string> cleanupCandidates(int64_t now_ms) const;

  // --- everywhere ---

  // Applies a committed txn in zxid order (txn.zxid > lastZxid(), else it is a no-op that
  // returns an error response), fires watches, forgets its pending changes.
  Applied apply(const Txn& txn);

  // Drops every prepared-but-unapplied change (e.g. after storage refused a txn).
  void discardPending();

  // A read-only request (exists, getData, getChildren*, getAcl, getAllChildrenNumber,
  // getEphemerals, multiRead, whoAmI, addWatch, removeWatches/checkWatches, setWatches*)
  // against committed state; registers or removes watches for who.session_id.
  // setWatches may also return events (watches that would already have fired).
  Applied read(const SessionView& who, const Request& request);

  // Forgets every watch of a session (connection-independent: called when it closes).
  void dropWatches(int64_t session_id);

  int64_t lastZxid() const;
  const SessionInfo* session(int64_t session_id) const;
  std::vector<SessionInfo> sessions() const;
  size_t nodeCount() const;
  void reserveNodes(size_t more);  // room for this many more znodes
  size_t watchCount() const;

  // Text about the state for operators (ZooKeeper's four-letter words): "stats" (key value
  // lines), "watches" (per session: the watched paths), "sessions" (id, timeout and
  // ephemerals). "" for an unknown question.
  std::string describe(const std::string& question) const;

  // Snapshot of the whole committed state (tree, sessions, lastZxid), and its inverse.
  std::string snapshot() const;
  bool restore(std::string_view snapshot, std::string* error);

  // Implementation detail, public only so the files that implement its parts can name it.
  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace corral::kernel
