// The lmdb storage plugin: the storage contract, durability across reopen, group commit,
// checksums that catch corrupted records, and a full disk that fails writes cleanly.
#include <gtest/gtest.h>
#include <lmdb.h>
#include <unistd.h>

#include <condition_variable>
#include <map>
#include <mutex>

#include "plugin_test_support.h"
#include "temp_dir.h"

namespace corral::testing {
namespace {

struct Listener : DurableListener {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::pair<uint64_t, StorageCode>> reports;
  void onDurable(uint64_t zxid, StorageCode code, ByteView) noexcept override {
    std::lock_guard<std::mutex> lock(mu);
    reports.emplace_back(zxid, code);
    cv.notify_all();
  }
  // Waits for a report covering zxid; returns its code.
  StorageCode waitFor(uint64_t zxid) {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait_for(lock, std::chrono::seconds(10), [&] {
      return !reports.empty() &&
             (reports.back().first >= zxid || reports.back().second != StorageCode::kOk);
    });
    return reports.empty() ? StorageCode::kIoError : reports.back().second;
  }
};

class LmdbStorageTest : public ::testing::Test {
 protected:
  // A fresh registry and plugin instance over the same folder (a "restart").
  StoragePlugin* open(const std::string& config = "sync = \"fsync\"") {
    s_ = nullptr;
    registry_.reset();
    registry_ = std::make_unique<kernel::PluginRegistry>(envDir("CORRAL_PLUGIN_DIR"), &host_);
    std::string error;
    s_ = registry_->createStorage("lmdb", config, &error);
    EXPECT_NE(s_, nullptr) << error;
    if (s_ == nullptr) return nullptr;
    StorageCode code = s_->open(ErrorBuf{err_, sizeof(err_)});
    EXPECT_EQ(code, StorageCode::kOk) << err_;
    s_->setDurableListener(&listener_);
    return s_;
  }
  StorageCode append(uint64_t zxid, const std::string& r) {
    return s_->append(zxid, ByteView(r.data(), r.size()), ErrorBuf{err_, sizeof(err_)});
  }
  std::map<uint64_t, std::string> readAll() {
    CollectLog c;
    EXPECT_EQ(s_->readLog(0, c, ErrorBuf{err_, sizeof(err_)}), StorageCode::kOk) << err_;
    return c.records;
  }

  TempDir dir_{"corral-lmdb-test"};
  corral_host_api host_ = [this] {
    corral_host_api h{};
    h.struct_size = sizeof(h);
    h.max_request_bytes = 1048575;
    h.data_dir = dir_.path().c_str();
    return h;
  }();
  std::unique_ptr<kernel::PluginRegistry> registry_;
  StoragePlugin* s_ = nullptr;
  Listener listener_;
  char err_[512] = {0};
};

TEST_F(LmdbStorageTest, RecordsAreDurableOnlyAfterTheSyncAndSurviveReopen) {
  ASSERT_NE(open(), nullptr);
  EXPECT_EQ(s_->lastZxid(), 0u);
  for (uint64_t z = 1; z <= 100; ++z)
    ASSERT_EQ(append(z, "record-" + std::to_string(z)), StorageCode::kOk);
  EXPECT_EQ(s_->lastZxid(), 100u);
  s_->requestSync();
  ASSERT_EQ(listener_.waitFor(100), StorageCode::kOk);
  // Group commit: 100 records, far fewer reports (usually one).
  EXPECT_LT(listener_.reports.size(), 100u);
  EXPECT_EQ(append(100, "dup"), StorageCode::kInvalidArgument);

  ASSERT_NE(open(), nullptr);
  EXPECT_EQ(s_->lastZxid(), 100u);
  auto all = readAll();
  ASSERT_EQ(all.size(), 100u);
  EXPECT_EQ(all[42], "record-42");
  CollectLog tail;
  s_->readLog(98, tail, ErrorBuf{err_, sizeof(err_)});
  EXPECT_EQ(tail.records.size(), 2u);
}

TEST_F(LmdbStorageTest, TruncateSnapshotsRetentionAndEpochs) {
  ASSERT_NE(open("snapshots_retained = 2"), nullptr);
  for (uint64_t z = 1; z <= 10; ++z) ASSERT_EQ(append(z, "r"), StorageCode::kOk);
  s_->requestSync();
  ASSERT_EQ(listener_.waitFor(10), StorageCode::kOk);
  ASSERT_EQ(s_->truncateAfter(8, ErrorBuf{err_, sizeof(err_)}), StorageCode::kOk) << err_;
  EXPECT_EQ(s_->lastZxid(), 8u);
  EXPECT_EQ(readAll().size(), 8u);

  KeepSnapshot none;
  EXPECT_EQ(s_->loadSnapshot(none, ErrorBuf{err_, sizeof(err_)}), StorageCode::kNotFound);
  for (uint64_t z : {3, 5, 7}) {
    std::string data = "tree@" + std::to_string(z);
    ASSERT_EQ(s_->saveSnapshot(z, ByteView(data.data(), data.size()), ErrorBuf{err_, sizeof(err_)}),
              StorageCode::kOk)
        << err_;
  }
  KeepSnapshot snap;
  ASSERT_EQ(s_->loadSnapshot(snap, ErrorBuf{err_, sizeof(err_)}), StorageCode::kOk);
  EXPECT_EQ(snap.zxid, 7u);
  EXPECT_EQ(snap.data, "tree@7");
  // Two snapshots kept (5 and 7); the log needed after the oldest (zxid > 5) kept.
  auto all = readAll();
  ASSERT_FALSE(all.empty());
  EXPECT_EQ(all.begin()->first, 6u);

  ASSERT_EQ(s_->saveHardState(HardState{4, 3}, ErrorBuf{err_, sizeof(err_)}), StorageCode::kOk);
  ASSERT_NE(open(), nullptr);
  HardState hs;
  ASSERT_EQ(s_->loadHardState(&hs, ErrorBuf{err_, sizeof(err_)}), StorageCode::kOk);
  EXPECT_EQ(hs.accepted_epoch, 4u);
  EXPECT_EQ(hs.current_epoch, 3u);
  EXPECT_EQ(s_->lastZxid(), 8u);
}

TEST_F(LmdbStorageTest, ACorruptedRecordIsDetectedAndNamed) {
  ASSERT_NE(open(), nullptr);
  for (uint64_t z = 1; z <= 5; ++z) ASSERT_EQ(append(z, "payload"), StorageCode::kOk);
  s_->requestSync();
  ASSERT_EQ(listener_.waitFor(5), StorageCode::kOk);
  s_ = nullptr;
  registry_.reset();

  // Flip a byte of record 3 behind the plugin's back (as a bad disk would).
  MDB_env* env = nullptr;
  ASSERT_EQ(mdb_env_create(&env), 0);
  mdb_env_set_maxdbs(env, 4);
  ASSERT_EQ(mdb_env_open(env, (dir_.path() + "/lmdb").c_str(), 0, 0644), 0);
  MDB_txn* txn = nullptr;
  ASSERT_EQ(mdb_txn_begin(env, nullptr, 0, &txn), 0);
  MDB_dbi log;
  ASSERT_EQ(mdb_dbi_open(txn, "log", 0, &log), 0);
  std::string key("\0\0\0\0\0\0\0\x03", 8);
  MDB_val k{key.size(), key.data()}, v;
  ASSERT_EQ(mdb_get(txn, log, &k, &v), 0);
  std::string changed(static_cast<char*>(v.mv_data), v.mv_size);
  changed[6] ^= 0x20;
  MDB_val nv{changed.size(), changed.data()};
  ASSERT_EQ(mdb_put(txn, log, &k, &nv, 0), 0);
  ASSERT_EQ(mdb_txn_commit(txn), 0);
  mdb_env_close(env);

  // The store is refused at open, before anything could be served from it.
  registry_ = std::make_unique<kernel::PluginRegistry>(envDir("CORRAL_PLUGIN_DIR"), &host_);
  std::string error;
  s_ = registry_->createStorage("lmdb", "", &error);
  ASSERT_NE(s_, nullptr) << error;
  EXPECT_EQ(s_->open(ErrorBuf{err_, sizeof(err_)}), StorageCode::kCorruption);
  std::string msg = err_;
  EXPECT_NE(msg.find("zxid 3"), std::string::npos) << msg;
  EXPECT_NE(msg.find(dir_.path() + "/lmdb/data.mdb"), std::string::npos) << msg;
}

TEST_F(LmdbStorageTest, ATruncatedStoreIsRefusedNotMapped) {
  ASSERT_NE(open(), nullptr);
  std::string big(64 * 1024, 'x');
  for (uint64_t z = 1; z <= 20; ++z) ASSERT_EQ(append(z, big), StorageCode::kOk);
  s_->requestSync();
  ASSERT_EQ(listener_.waitFor(20), StorageCode::kOk);
  s_ = nullptr;
  registry_.reset();
  std::string file = dir_.path() + "/lmdb/data.mdb";
  ASSERT_EQ(::truncate(file.c_str(), 256 * 1024), 0);
  registry_ = std::make_unique<kernel::PluginRegistry>(envDir("CORRAL_PLUGIN_DIR"), &host_);
  std::string error;
  s_ = registry_->createStorage("lmdb", "", &error);
  ASSERT_NE(s_, nullptr) << error;
  EXPECT_EQ(s_->open(ErrorBuf{err_, sizeof(err_)}), StorageCode::kCorruption);
  EXPECT_NE(std::string(err_).find("data.mdb"), std::string::npos) << err_;
}

TEST_F(LmdbStorageTest, AFullMapFailsWritesWithoutLosingDurableOnes) {
  ASSERT_NE(open("map_size_mb = 1"), nullptr);
  ASSERT_EQ(append(1, "small"), StorageCode::kOk);
  s_->requestSync();
  ASSERT_EQ(listener_.waitFor(1), StorageCode::kOk);
  std::string big(300 * 1024, 'b');
  for (uint64_t z = 2; z <= 6; ++z) ASSERT_EQ(append(z, big), StorageCode::kOk);
  s_->requestSync();
  EXPECT_EQ(listener_.waitFor(6), StorageCode::kNoSpace);
  ASSERT_EQ(s_->truncateAfter(1, ErrorBuf{err_, sizeof(err_)}), StorageCode::kOk) << err_;
  {
    std::lock_guard<std::mutex> lock(listener_.mu);
    listener_.reports.clear();
  }
  ASSERT_EQ(append(2, "fits"), StorageCode::kOk);
  s_->requestSync();
  EXPECT_EQ(listener_.waitFor(2), StorageCode::kOk);
  auto all = readAll();
  EXPECT_EQ(all, (std::map<uint64_t, std::string>{{1, "small"}, {2, "fits"}}));
}

TEST_F(LmdbStorageTest, ConfigErrorsNameTheKey) {
  kernel::PluginRegistry r(envDir("CORRAL_PLUGIN_DIR"), &host_);
  std::string error;
  EXPECT_EQ(r.createStorage("lmdb", "sync = \"sometimes\"", &error), nullptr);
  EXPECT_NE(error.find("'sync'"), std::string::npos) << error;
  EXPECT_EQ(r.createStorage("lmdb", "map_size_mb = 0", &error), nullptr);
  EXPECT_NE(error.find("'map_size_mb'"), std::string::npos) << error;
  EXPECT_EQ(r.createStorage("lmdb", "mapsize = 1", &error), nullptr);
  EXPECT_NE(error.find("'mapsize'"), std::string::npos) << error;
}

}  // namespace
}  // namespace corral::testing
