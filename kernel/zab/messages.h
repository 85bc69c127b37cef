// The messages Zab exchanges between servers, and their binary form. One shape for all:
// a type, the epoch the message belongs to, a zxid, two type-specific numbers and a payload
// (a txn record, a snapshot, or the server's own bytes).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace corral::zab {

enum class MsgType : uint8_t {
  kVote = 1,  // election notification: epoch/zxid/a=leader of the vote, b=round, flags=state
  kFollowerInfo = 2,  // learner -> leader: epoch=accepted epoch, zxid=last logged, flags=observer
  kLeaderInfo = 3,    // leader -> learner: epoch=the new epoch
  kAckEpoch = 4,      // learner -> leader: epoch=current epoch, zxid=last logged
  kDiff = 5,          // leader -> learner: proposals after zxid follow
  kTrunc = 6,         // leader -> learner: drop the log above zxid, then proposals follow
  kSnap = 7,          // leader -> learner: payload=snapshot at zxid, then proposals follow
  kNewLeader = 8,     // leader -> learner: the sync is sent; zxid=the last record of it
  kAck = 9,           // learner -> leader: durable up to zxid; flags=1 acks NEWLEADER/NEWEPOCH
  kUpToDate = 10,     // leader -> learner: committed up to zxid, serve
  kProposal = 11,     // zxid, payload=record
  kCommit = 12,       // everything up to zxid is committed
  kInform = 13,       // to observers: zxid, payload=record, committed
  kPing = 14,         // both ways; from a learner the payload is the server's own
  kApp = 15,          // the server's own bytes (forwarded requests, session checks, sync)
  kNewEpoch = 16,     // leader -> followers: move to epoch (the zxid counter ran out)
};

enum class VoteState : uint8_t { kLooking = 0, kFollowing = 1, kLeading = 2, kObserving = 3 };

struct Msg {
  MsgType type = MsgType::kPing;
  int64_t epoch = 0;
  int64_t zxid = 0;
  int64_t a = 0;
  int64_t b = 0;
  uint8_t flags = 0;
  std::string payload;
};

std::string encodeMsg(const Msg& m);
// Encodes without copying a payload the caller holds elsewhere.
std::string encodeMsg(MsgType type, int64_t epoch, int64_t zxid, std::string_view payload,
                      int64_t a = 0, int64_t b = 0, uint8_t flags = 0);
bool decodeMsg(std::string_view bytes, Msg* m);

}  // namespace corral::zab
