// The storage contract, as the memory plugin implements it (the LMDB plugin must pass the
// same checks).
#include <gtest/gtest.h>

#include <map>

#include "plugin_test_support.h"

namespace corral::testing {
namespace {

struct Listener : DurableListener {
  std::vector<uint64_t> durable;
  void onDurable(uint64_t zxid, StorageCode code, ByteView) noexcept override {
    if (code == StorageCode::kOk) durable.push_back(zxid);
  }
};

class MemoryStorageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    s_ = registry_.createStorage("memory", "", &error_);
    ASSERT_NE(s_, nullptr) << error_;
    ASSERT_EQ(s_->open(ErrorBuf{err_, sizeof(err_)}), StorageCode::kOk);
    s_->setDurableListener(&listener_);
  }
  StorageCode append(uint64_t zxid, const std::string& r) {
    return s_->append(zxid, ByteView(r.data(), r.size()), ErrorBuf{err_, sizeof(err_)});
  }

  kernel::PluginRegistry registry_{envDir("CORRAL_PLUGIN_DIR"), testHost()};
  StoragePlugin* s_ = nullptr;
  Listener listener_;
  std::string error_;
  char err_[256] = {0};
};

TEST_F(MemoryStorageTest, AppendSyncReadAndTruncate) {
  EXPECT_EQ(s_->lastZxid(), 0u);
  ASSERT_EQ(append(1, "one"), StorageCode::kOk);
  ASSERT_EQ(append(2, "two"), StorageCode::kOk);
  EXPECT_TRUE(listener_.durable.empty());  // nothing is durable before a sync
  s_->requestSync();
  EXPECT_EQ(listener_.durable, std::vector<uint64_t>{2});
  EXPECT_EQ(append(2, "again"), StorageCode::kInvalidArgument);
  EXPECT_NE(std::string(err_).find("not above"), std::string::npos);
  ASSERT_EQ(append(5, "five"), StorageCode::kOk);
  EXPECT_EQ(s_->lastZxid(), 5u);

  CollectLog all;
  ASSERT_EQ(s_->readLog(0, all, ErrorBuf{err_, sizeof(err_)}), StorageCode::kOk);
  EXPECT_EQ(all.records, (std::map<uint64_t, std::string>{{1, "one"}, {2, "two"}, {5, "five"}}));
  CollectLog after;
  after.stop_after = 1;
  s_->readLog(1, after, ErrorBuf{err_, sizeof(err_)});
  EXPECT_EQ(after.records, (std::map<uint64_t, std::string>{{2, "two"}}));

  ASSERT_EQ(s_->truncateAfter(1, ErrorBuf{err_, sizeof(err_)}), StorageCode::kOk);
  EXPECT_EQ(s_->lastZxid(), 1u);
  ASSERT_EQ(append(2, "two-b"), StorageCode::kOk);
  s_->requestSync();
  EXPECT_EQ(listener_.durable.back(), 2u);
}

TEST_F(MemoryStorageTest, SnapshotsAndHardState) {
  KeepSnapshot none;
  EXPECT_EQ(s_->loadSnapshot(none, ErrorBuf{err_, sizeof(err_)}), StorageCode::kNotFound);
  for (uint64_t z = 1; z <= 4; ++z) ASSERT_EQ(append(z, "r" + std::to_string(z)), StorageCode::kOk);
  ASSERT_EQ(s_->saveSnapshot(3, ByteView("tree", 4), ErrorBuf{err_, sizeof(err_)}),
            StorageCode::kOk);
  KeepSnapshot snap;
  ASSERT_EQ(s_->loadSnapshot(snap, ErrorBuf{err_, sizeof(err_)}), StorageCode::kOk);
  EXPECT_EQ(snap.zxid, 3u);
  EXPECT_EQ(snap.data, "tree");
  CollectLog rest;
  s_->readLog(3, rest, ErrorBuf{err_, sizeof(err_)});
  EXPECT_EQ(rest.records, (std::map<uint64_t, std::string>{{4, "r4"}}));

  HardState hs;
  ASSERT_EQ(s_->loadHardState(&hs, ErrorBuf{err_, sizeof(err_)}), StorageCode::kOk);
  EXPECT_EQ(hs.current_epoch, 0u);
  ASSERT_EQ(s_->saveHardState(HardState{5, 4}, ErrorBuf{err_, sizeof(err_)}), StorageCode::kOk);
  ASSERT_EQ(s_->loadHardState(&hs, ErrorBuf{err_, sizeof(err_)}), StorageCode::kOk);
  EXPECT_EQ(hs.accepted_epoch, 5u);
  EXPECT_EQ(hs.current_epoch, 4u);
}

}  // namespace
}  // namespace corral::testing
