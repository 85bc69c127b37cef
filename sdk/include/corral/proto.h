// The Corral client protocol as C++ values: what a client asks, what the server answers,
// and the events it pushes. The kernel, the C++ client and every client transport share this
// model; corral/codec.h turns it into the native wire encoding (docs/protocol.md).
//
// The model follows ZooKeeper's client protocol closely (opcodes, error codes, Stat, ACL,
// watch event types and states have ZooKeeper's numeric values), so that a transport for the
// ZooKeeper wire protocol translates field by field.
//
// These types use std::string and std::vector: they never cross the plugin ABI as objects,
// only as encoded frames.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace corral {

// ZooKeeper's error codes (KeeperException.Code), same numbers.
enum class ZkError : int32_t {
  kOk = 0,
  kSystemError = -1,
  kRuntimeInconsistency = -2,
  kDataInconsistency = -3,
  kConnectionLoss = -4,
  kMarshallingError = -5,
  kUnimplemented = -6,
  kOperationTimeout = -7,
  kBadArguments = -8,
  kUnknownSession = -12,
  kNewConfigNoQuorum = -13,
  kReconfigInProgress = -14,
  kApiError = -100,
  kNoNode = -101,
  kNoAuth = -102,
  kBadVersion = -103,
  kNoChildrenForEphemerals = -108,
  kNodeExists = -110,
  kNotEmpty = -111,
  kSessionExpired = -112,
  kInvalidCallback = -113,
  kInvalidAcl = -114,
  kAuthFailed = -115,
  kSessionMoved = -118,
  kNotReadOnly = -119,
  kEphemeralOnLocalSession = -120,
  kNoWatcher = -121,
  kRequestTimeout = -122,
  kReconfigDisabled = -123,
  kSessionClosedRequireSaslAuth = -124,
  kQuotaExceeded = -125,
  kThrottledOp = -127,
};

// ZooKeeper's name for the code, as KeeperException.Code spells it: "NONODE", "BADVERSION"...
const char* zkErrorName(ZkError e);

// ZooKeeper's opcodes (ZooDefs.OpCode), same numbers.
enum class OpCode : int32_t {
  kNotification = 0,
  kCreate = 1,
  kDelete = 2,
  kExists = 3,
  kGetData = 4,
  kSetData = 5,
  kGetAcl = 6,
  kSetAcl = 7,
  kGetChildren = 8,
  kSync = 9,
  kPing = 11,
  kGetChildren2 = 12,
  kCheck = 13,
  kMulti = 14,
  kCreate2 = 15,
  kReconfig = 16,
  kCheckWatches = 17,
  kRemoveWatches = 18,
  kCreateContainer = 19,
  kDeleteContainer = 20,
  kCreateTtl = 21,
  kMultiRead = 22,
  kAuth = 100,
  kSetWatches = 101,
  kSasl = 102,
  kGetEphemerals = 103,
  kGetAllChildrenNumber = 104,
  kSetWatches2 = 105,
  kAddWatch = 106,
  kWhoAmI = 107,
  kCreateSession = -10,
  kCloseSession = -11,
  kError = -1,
};

enum class CreateMode : int32_t {
  kPersistent = 0,
  kEphemeral = 1,
  kPersistentSequential = 2,
  kEphemeralSequential = 3,
  kContainer = 4,
  kPersistentWithTtl = 5,
  kPersistentSequentialWithTtl = 6,
};

// ZooDefs.Perms bits.
enum Perm : int32_t {
  kPermRead = 1,
  kPermWrite = 2,
  kPermCreate = 4,
  kPermDelete = 8,
  kPermAdmin = 16,
  kPermAll = 31,
};

// Watcher.Event.EventType
enum class EventType : int32_t {
  kNone = -1,
  kNodeCreated = 1,
  kNodeDeleted = 2,
  kNodeDataChanged = 3,
  kNodeChildrenChanged = 4,
  kDataWatchRemoved = 5,
  kChildWatchRemoved = 6,
  kPersistentWatchRemoved = 7,
};

// Watcher.Event.KeeperState
enum class KeeperState : int32_t {
  kDisconnected = 0,
  kSyncConnected = 3,
  kAuthFailed = 4,
  kConnectedReadOnly = 5,
  kSaslAuthenticated = 6,
  kExpired = -112,
  kClosed = 7,
};

// AddWatchMode
enum class AddWatchMode : int32_t { kPersistent = 0, kPersistentRecursive = 1 };

// WatcherType for removeWatches / checkWatches.
enum class WatcherType : int32_t { kChildren = 1, kData = 2, kAny = 3 };

struct Id {
  std::string scheme;
  std::string id;
  bool operator==(const Id&) const = default;
};

struct Acl {
  int32_t perms = 0;
  Id id;
  bool operator==(const Acl&) const = default;
};

struct Stat {
  int64_t czxid = 0;
  int64_t mzxid = 0;
  int64_t ctime = 0;
  int64_t mtime = 0;
  int32_t version = 0;
  int32_t cversion = 0;
  int32_t aversion = 0;
  int64_t ephemeral_owner = 0;
  int32_t data_length = 0;
  int32_t num_children = 0;
  int64_t pzxid = 0;
  bool operator==(const Stat&) const = default;
};

// One operation: a top-level request's body, or one element of a multi / multiRead.
// Which fields matter depends on `op`:
//   create*/createContainer/createTtl: path, data, acl, mode, ttl_ms
//   delete/check/setData/setAcl: path, version (-1 = any), data/acl
//   exists/getData/getChildren/getChildren2: path, watch
//   getAcl/getAllChildrenNumber/getEphemerals (path = prefix)/sync: path
//   addWatch: path, watch_mode;  removeWatches/checkWatches: path, watcher_type
//   auth: scheme, auth (credentials)
//   setWatches/setWatches2: relative_zxid and the watch path lists
struct Op {
  OpCode op = OpCode::kError;
  std::string path;
  std::string data;
  std::vector<Acl> acl;
  int32_t version = -1;
  CreateMode mode = CreateMode::kPersistent;
  int64_t ttl_ms = 0;
  bool watch = false;
  AddWatchMode watch_mode = AddWatchMode::kPersistent;
  WatcherType watcher_type = WatcherType::kAny;
  std::string scheme;
  std::string auth;
  int64_t relative_zxid = 0;
  std::vector<std::string> data_watches;
  std::vector<std::string> exist_watches;
  std::vector<std::string> child_watches;
  std::vector<std::string> persistent_watches;
  std::vector<std::string> persistent_recursive_watches;
};

struct Request {
  int32_t xid = 0;
  Op op;
  std::vector<Op> ops;  // the sub-operations of a multi or multiRead
};

// The result of one operation. Which fields are set depends on the op:
//   create*: path (the actual path, with sequence suffix); create2/createContainer/createTtl
//   also stat.  exists/setData/setAcl: stat.  getData: data, stat.  getAcl: acl, stat.
//   getChildren: children; getChildren2: children, stat.  getAllChildrenNumber: count.
//   getEphemerals: children (the paths).  whoAmI: ids.  sync: path.
// In a failed multi, every result carries its error (ZooKeeper's ErrorResult): the failing
// op its own code, earlier ops kOk-turned-kRuntimeInconsistency, later ops
// kRuntimeInconsistency.
struct OpResult {
  OpCode op = OpCode::kError;
  ZkError err = ZkError::kOk;
  std::string path;
  std::string data;
  Stat stat;
  bool has_stat = false;
  std::vector<std::string> children;
  std::vector<Acl> acl;
  int32_t count = 0;
  std::vector<Id> ids;
};

struct Response {
  int32_t xid = 0;
  int64_t zxid = 0;  // the server's last committed zxid when it answered
  ZkError err = ZkError::kOk;
  OpResult result;
  std::vector<OpResult> results;  // per-op results of a multi / multiRead
};

struct WatchEvent {
  EventType type = EventType::kNone;
  KeeperState state = KeeperState::kSyncConnected;
  std::string path;
  int64_t zxid = 0;
};

struct ConnectRequest {
  int32_t protocol_version = 0;
  int64_t last_zxid_seen = 0;
  int32_t timeout_ms = 0;
  int64_t session_id = 0;  // 0: a new session; else resume this one
  std::string password;    // 16 bytes for a resumed session
  bool read_only = false;
};

struct ConnectResponse {
  ZkError err = ZkError::kOk;  // kSessionExpired when resuming an unknown/expired session
  int32_t protocol_version = 0;
  int32_t timeout_ms = 0;  // negotiated
  int64_t session_id = 0;
  std::string password;
  bool read_only = false;
};

// True for opcodes that change state and so become transactions.
bool isWriteOp(OpCode op);

}  // namespace corral
