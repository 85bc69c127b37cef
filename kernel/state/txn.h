// Txn: one transaction as the log stores it and every replica applies it.
// (Owned by the state machine; this is the part every other kernel component relies on.)
#pragma once

#include <corral/proto.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace corral::kernel {

struct Txn {
  int64_t zxid = 0;
  int64_t time_ms = 0;           // decided once, by the server that prepared it
  int64_t session_id = 0;        // requester (0 for server-generated txns)
  int32_t xid = 0;               // the client's request id, echoed in the reply
  OpCode type = OpCode::kError;  // kCreate.., kCreateSession, kCloseSession, kMulti, kError..
  ZkError err = ZkError::kOk;    // for error txns
  // The txn's body; the state machine defines and fills it (see txn_body.h).
  std::vector<std::string> fields;
};

// Stable binary encoding of a txn (what storage keeps).
std::string encodeTxn(const Txn& txn);
bool decodeTxn(std::string_view bytes, Txn* out, std::string* error);
// The same into a Txn that is reused (a replay decodes a txn after another): its fields'
// buffers are kept. On failure *out holds garbage.
bool decodeTxnReusing(std::string_view bytes, Txn* out, std::string* error);

}  // namespace corral::kernel
