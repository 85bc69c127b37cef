// The ZooKeeper client protocol records the raw driver sends and reads (zookeeper.jute).
// Every encoder appends one whole frame with xid 0; the sender patches the xid in place at
// kXidOffset, so that a pre-encoded request can be sent again and again.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace corral::bench::zk {

enum OpCode : int32_t {
  kCreate = 1,
  kDelete = 2,
  kExists = 3,
  kGetData = 4,
  kSetData = 5,
  kGetChildren = 8,
  kMulti = 14,
  kPing = 11,
  kCloseSession = -11,
};

constexpr int32_t kNotificationXid = -1;  // a watch event, not a reply
constexpr int32_t kPingXid = -2;
constexpr int32_t kFirstXid = 1;

constexpr int32_t kOk = 0;
constexpr int32_t kNoNode = -101;
constexpr int32_t kNodeExists = -110;

constexpr int32_t kPersistent = 0;
constexpr int32_t kPersistentSequential = 2;

constexpr size_t kXidOffset = 4;          // after the frame length
constexpr size_t kReplyHeaderBytes = 16;  // xid, zxid, err
constexpr int32_t kMaxFrameBytes = 64 << 20;

struct ReplyHeader {
  int32_t xid;
  int64_t zxid;
  int32_t err;
};

// ConnectRequest for a new session (no password, not read-only).
void encodeConnect(std::string* out, int timeout_ms);
void encodeCreate(std::string* out, std::string_view path, std::string_view data, int32_t flags);
void encodeDelete(std::string* out, std::string_view path);
// exists, getData or getChildren, without a watch: all three are {path, bool watch}.
void encodeRead(std::string* out, OpCode op, std::string_view path);
void encodeSetData(std::string* out, std::string_view path, std::string_view data);
// A multi of `count` setData ops on one node (any version).
void encodeMultiSetData(std::string* out, std::string_view path, std::string_view data, int count);
// Reads the reply to such a multi: false if any op failed (an ErrorResult), a result is not
// a setData's, there are not `count` of them or the record is cut short.
bool multiSetDataSucceeded(std::string_view body, int count);
// A request with no body (ping, closeSession), with its xid already set.
void encodeBare(std::string* out, int32_t xid, OpCode op);

// ZooKeeper's name for an error code ("ZNONODE"), or "error N" for the rare ones.
std::string errorName(int32_t err);

}  // namespace corral::bench::zk
