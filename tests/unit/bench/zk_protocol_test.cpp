// corral-bench's multi records: the request it sends and how it judges the reply, since a
// failed multi can come back with err 0 in its reply header and only its results tell.
#include "zk_protocol.h"

#include <gtest/gtest.h>

#include <string>

#include "jute.h"

namespace corral::bench {
namespace {

constexpr int32_t kErrorResultType = -1;
constexpr int32_t kBadVersion = -103;
constexpr int32_t kRuntimeInconsistency = -2;

void putHeader(JuteWriter& w, int32_t type, bool done, int32_t err) {
  w.int32(type);
  w.boolean(done);
  w.int32(err);
}

void putSetDataResult(JuteWriter& w) {
  for (int i = 0; i < 4; ++i) w.int64(i + 1);  // czxid, mzxid, ctime, mtime
  for (int i = 0; i < 3; ++i) w.int32(i);      // version, cversion, aversion
  w.int64(0);                                  // ephemeralOwner
  w.int32(100);                                // dataLength
  w.int32(0);                                  // numChildren
  w.int64(7);                                  // pzxid
}

std::string successfulReply(int ops) {
  std::string out;
  JuteWriter w(&out);
  for (int i = 0; i < ops; ++i) {
    putHeader(w, zk::kSetData, false, 0);
    putSetDataResult(w);
  }
  putHeader(w, -1, true, -1);
  return out;
}

TEST(BenchMultiTest, RequestIsAMultiOfSetDataOpsClosedByADoneHeader) {
  std::string frame;
  zk::encodeMultiSetData(&frame, "/b/s0", "xyz", 2);
  JuteReader r(frame);
  EXPECT_EQ(r.int32(), static_cast<int32_t>(frame.size() - 4));
  EXPECT_EQ(r.int32(), 0);  // xid, patched by the sender
  EXPECT_EQ(r.int32(), zk::kMulti);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(r.int32(), zk::kSetData);
    EXPECT_FALSE(r.boolean());
    EXPECT_EQ(r.int32(), -1);
    EXPECT_EQ(r.buffer(), "/b/s0");
    EXPECT_EQ(r.buffer(), "xyz");
    EXPECT_EQ(r.int32(), -1);  // any version
  }
  EXPECT_EQ(r.int32(), -1);
  EXPECT_TRUE(r.boolean());
  EXPECT_EQ(r.int32(), -1);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.remaining(), 0u);
}

TEST(BenchMultiTest, ReplyWithEverySetDataResultSucceeds) {
  EXPECT_TRUE(zk::multiSetDataSucceeded(successfulReply(3), 3));
}

TEST(BenchMultiTest, ReplyWithErrorResultsFailsEvenUnderAnOkHeader) {
  std::string out;
  JuteWriter w(&out);
  putHeader(w, kErrorResultType, false, kBadVersion);
  w.int32(kBadVersion);
  putHeader(w, kErrorResultType, false, kRuntimeInconsistency);
  w.int32(kRuntimeInconsistency);
  putHeader(w, -1, true, -1);
  EXPECT_FALSE(zk::multiSetDataSucceeded(out, 2));
}

TEST(BenchMultiTest, ReplyWithTooFewResultsFails) {
  EXPECT_FALSE(zk::multiSetDataSucceeded(successfulReply(2), 3));
  EXPECT_FALSE(zk::multiSetDataSucceeded(successfulReply(0), 1));
}

TEST(BenchMultiTest, TruncatedReplyFails) {
  std::string reply = successfulReply(2);
  for (size_t cut : {size_t{0}, size_t{5}, size_t{40}, reply.size() - 1})
    EXPECT_FALSE(zk::multiSetDataSucceeded(std::string_view(reply).substr(0, cut), 2)) << cut;
}

}  // namespace
}  // namespace corral::bench
