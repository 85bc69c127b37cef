// The lmdb storage plugin: the storage contract, durability across reopen, group commit,
// the journal's segments, torn ends and checksums that catch corrupted records, the move
// from the older layout, and a full map that fails snapshots cleanly.
#include <gtest/gtest.h>
#include <lmdb.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>

#include "../../plugins/storage/lmdb/crc32.h"
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
  // Records 1..5 ("payload-N"), durable, and the plugin closed.
  void writeFiveAndClose() {
    ASSERT_NE(open(), nullptr);
    for (uint64_t z = 1; z <= 5; ++z)
      ASSERT_EQ(append(z, "payload-" + std::to_string(z)), StorageCode::kOk);
    s_->requestSync();
    ASSERT_EQ(listener_.waitFor(5), StorageCode::kOk);
    s_ = nullptr;
    registry_.reset();
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
  for (uint64_t z = 6; z <= 8; ++z) EXPECT_EQ(all.count(z), 1u) << z;

  ASSERT_EQ(s_->saveHardState(HardState{4, 3}, ErrorBuf{err_, sizeof(err_)}), StorageCode::kOk);
  ASSERT_NE(open(), nullptr);
  HardState hs;
  ASSERT_EQ(s_->loadHardState(&hs, ErrorBuf{err_, sizeof(err_)}), StorageCode::kOk);
  EXPECT_EQ(hs.accepted_epoch, 4u);
  EXPECT_EQ(hs.current_epoch, 3u);
  EXPECT_EQ(s_->lastZxid(), 8u);
}

// The journal segment files of a store, oldest first.
std::vector<std::string> segments(const std::string& data_dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(data_dir + "/lmdb/journal"))
    if (e.path().extension() == ".log") out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

void flipByte(const std::string& file, uint64_t at) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  char byte = 0;
  f.seekg(static_cast<std::streamoff>(at));
  f.read(&byte, 1);
  byte ^= 0x20;
  f.seekp(static_cast<std::streamoff>(at));
  f.write(&byte, 1);
}

// The offset of a payload's first byte in a segment file.
uint64_t offsetOf(const std::string& file, const std::string& payload) {
  std::ifstream f(file, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return bytes.find(payload);
}

TEST_F(LmdbStorageTest, ACorruptedRecordIsDetectedAndNamed) {
  writeFiveAndClose();
  if (HasFatalFailure()) return;

  // Flip a byte of record 3 behind the plugin's back (as a bad disk would): valid records
  // follow it, so this is damage, not a torn end.
  auto files = segments(dir_.path());
  ASSERT_EQ(files.size(), 1u);
  flipByte(files[0], offsetOf(files[0], "payload-3") + 2);

  // The store is refused at open, before anything could be served from it.
  registry_ = std::make_unique<kernel::PluginRegistry>(envDir("CORRAL_PLUGIN_DIR"), &host_);
  std::string error;
  s_ = registry_->createStorage("lmdb", "", &error);
  ASSERT_NE(s_, nullptr) << error;
  EXPECT_EQ(s_->open(ErrorBuf{err_, sizeof(err_)}), StorageCode::kCorruption);
  std::string msg = err_;
  EXPECT_NE(msg.find("after zxid 2"), std::string::npos) << msg;
  EXPECT_NE(msg.find(files[0]), std::string::npos) << msg;
}

TEST_F(LmdbStorageTest, AWriteCutShortByACrashIsCutOffAndAppendsGoOn) {
  writeFiveAndClose();
  if (HasFatalFailure()) return;
  // Half a record after the last one: what a crash in the middle of a write leaves.
  auto files = segments(dir_.path());
  uint64_t end = offsetOf(files[0], "payload-5") + 9;
  {
    std::fstream f(files[0], std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(end));
    f.write("\x40\x00\x00\x00\x11\x22\x33\x44\x06\x00\x00\x00\x00\x00\x00\x00half", 20);
  }
  ASSERT_NE(open(), nullptr);
  EXPECT_EQ(s_->lastZxid(), 5u);
  ASSERT_EQ(append(6, "after-the-crash"), StorageCode::kOk);
  s_->requestSync();
  ASSERT_EQ(listener_.waitFor(6), StorageCode::kOk);
  ASSERT_NE(open(), nullptr);
  auto all = readAll();
  ASSERT_EQ(all.size(), 6u);
  EXPECT_EQ(all[5], "payload-5");
  EXPECT_EQ(all[6], "after-the-crash");
}

TEST_F(LmdbStorageTest, SegmentsRollTruncateAndAreDroppedBehindSnapshots) {
  ASSERT_NE(open("journal_segment_mb = 1\nsnapshots_retained = 1"), nullptr);
  std::string big(300 * 1024, 'j');
  for (uint64_t z = 1; z <= 20; ++z) {
    ASSERT_EQ(append(z, big + std::to_string(z)), StorageCode::kOk);
    s_->requestSync();  // one group each: three fit in a segment
    ASSERT_EQ(listener_.waitFor(z), StorageCode::kOk);
  }
  size_t rolled = segments(dir_.path()).size();
  EXPECT_GE(rolled, 5u);
  // A truncation reaching back across segments removes the newer files.
  ASSERT_EQ(s_->truncateAfter(9, ErrorBuf{err_, sizeof(err_)}), StorageCode::kOk) << err_;
  EXPECT_LT(segments(dir_.path()).size(), rolled);
  {
    std::lock_guard<std::mutex> lock(listener_.mu);
    listener_.reports.clear();
  }
  for (uint64_t z = 10; z <= 12; ++z)
    ASSERT_EQ(append(z, "new-" + std::to_string(z)), StorageCode::kOk);
  s_->requestSync();
  ASSERT_EQ(listener_.waitFor(12), StorageCode::kOk);
  ASSERT_NE(open("journal_segment_mb = 1\nsnapshots_retained = 1"), nullptr);
  auto all = readAll();
  ASSERT_EQ(all.size(), 12u);
  EXPECT_EQ(all[9], big + "9");
  EXPECT_EQ(all[10], "new-10");
  EXPECT_EQ(all[12], "new-12");
  // A snapshot at 8 makes every segment holding only records <= 8 unneeded.
  std::string tree = "tree@8";
  ASSERT_EQ(s_->saveSnapshot(8, ByteView(tree.data(), tree.size()), ErrorBuf{err_, sizeof(err_)}),
            StorageCode::kOk);
  all = readAll();
  EXPECT_GT(all.begin()->first, 1u);
  EXPECT_LE(all.begin()->first, 9u);
  EXPECT_EQ(all.rbegin()->first, 12u);
}

TEST_F(LmdbStorageTest, AStoreWithItsLogInLmdbMovesItToTheJournal) {
  // The layout before the journal: records in a "log" database, crc(key | record) | record.
  std::string path = dir_.path() + "/lmdb";
  std::filesystem::create_directories(path);
  MDB_env* env = nullptr;
  ASSERT_EQ(mdb_env_create(&env), 0);
  mdb_env_set_maxdbs(env, 4);
  ASSERT_EQ(mdb_env_open(env, path.c_str(), 0, 0644), 0);
  MDB_txn* txn = nullptr;
  ASSERT_EQ(mdb_txn_begin(env, nullptr, 0, &txn), 0);
  MDB_dbi log;
  ASSERT_EQ(mdb_dbi_open(txn, "log", MDB_CREATE, &log), 0);
  for (uint64_t z = 1; z <= 3; ++z) {
    std::string key(8, '\0');
    key[7] = static_cast<char>(z);
    std::string record = "old-" + std::to_string(z);
    uint32_t crc = lmdb::crc32(record.data(), record.size(), lmdb::crc32(key.data(), key.size()));
    std::string value(4, '\0');
    for (int i = 0; i < 4; ++i) value[i] = static_cast<char>((crc >> (8 * i)) & 0xff);
    value += record;
    MDB_val k{key.size(), key.data()}, v{value.size(), value.data()};
    ASSERT_EQ(mdb_put(txn, log, &k, &v, 0), 0);
  }
  ASSERT_EQ(mdb_txn_commit(txn), 0);
  mdb_env_close(env);

  ASSERT_NE(open(), nullptr);
  EXPECT_EQ(s_->lastZxid(), 3u);
  ASSERT_EQ(append(4, "new-4"), StorageCode::kOk);
  s_->requestSync();
  ASSERT_EQ(listener_.waitFor(4), StorageCode::kOk);
  ASSERT_NE(open(), nullptr);
  EXPECT_EQ(readAll(), (std::map<uint64_t, std::string>{
                           {1, "old-1"}, {2, "old-2"}, {3, "old-3"}, {4, "new-4"}}));
}

TEST_F(LmdbStorageTest, ATruncatedStoreIsRefusedNotMapped) {
  ASSERT_NE(open("snapshots_retained = 20"), nullptr);
  std::string big(64 * 1024, 'x');
  for (uint64_t z = 1; z <= 20; ++z)
    ASSERT_EQ(s_->saveSnapshot(z, ByteView(big.data(), big.size()), ErrorBuf{err_, sizeof(err_)}),
              StorageCode::kOk);
  s_ = nullptr;
  registry_.reset();
  std::string file = dir_.path() + "/lmdb/data.mdb";
  ASSERT_GT(std::filesystem::file_size(file), 512u * 1024);
  ASSERT_EQ(::truncate(file.c_str(), 256 * 1024), 0);
  registry_ = std::make_unique<kernel::PluginRegistry>(envDir("CORRAL_PLUGIN_DIR"), &host_);
  std::string error;
  s_ = registry_->createStorage("lmdb", "", &error);
  ASSERT_NE(s_, nullptr) << error;
  EXPECT_EQ(s_->open(ErrorBuf{err_, sizeof(err_)}), StorageCode::kCorruption);
  EXPECT_NE(std::string(err_).find("data.mdb"), std::string::npos) << err_;
}

TEST_F(LmdbStorageTest, AFullMapFailsASnapshotWithoutLosingDurableRecords) {
  ASSERT_NE(open("map_size_mb = 1"), nullptr);
  ASSERT_EQ(append(1, "small"), StorageCode::kOk);
  s_->requestSync();
  ASSERT_EQ(listener_.waitFor(1), StorageCode::kOk);
  std::string big(2 * 1024 * 1024, 'b');
  EXPECT_EQ(s_->saveSnapshot(1, ByteView(big.data(), big.size()), ErrorBuf{err_, sizeof(err_)}),
            StorageCode::kNoSpace);
  EXPECT_NE(std::string(err_).find("data.mdb"), std::string::npos) << err_;
  ASSERT_EQ(append(2, "fits"), StorageCode::kOk);
  s_->requestSync();
  EXPECT_EQ(listener_.waitFor(2), StorageCode::kOk);
  std::string tree = "tree@2";
  EXPECT_EQ(s_->saveSnapshot(2, ByteView(tree.data(), tree.size()), ErrorBuf{err_, sizeof(err_)}),
            StorageCode::kOk)
      << err_;
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
  EXPECT_EQ(r.createStorage("lmdb", "journal_segment_mb = 0", &error), nullptr);
  EXPECT_NE(error.find("'journal_segment_mb'"), std::string::npos) << error;
}

}  // namespace
}  // namespace corral::testing
