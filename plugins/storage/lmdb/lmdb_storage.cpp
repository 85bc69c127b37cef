// The "lmdb" storage plugin: snapshots and ZAB epochs in an LMDB environment, the txn log
// in an append-only journal beside it (journal.h).
//
// Durability: append() stages records in memory; a sync thread writes everything staged as
// one group into the journal and fdatasyncs it once, then reports the last zxid durable.
// Records staged while a sync runs go together in the next one: group commit, so
// throughput grows with concurrency instead of being bound by one fsync per write.
// Snapshots and epochs are rare and go through LMDB commits (synced on commit).
//
// Integrity: every value and journal record carries a CRC-32C, checked whenever it is
// read; a mismatch is a kCorruption error naming the file and the zxid or offset. LMDB's
// copy-on-write pages and atomic meta-page switch mean a crash never leaves a half-written
// transaction; the journal cuts a torn final write off at open.
//
// Layout: <path>/data.mdb with named databases "snap" zxid(8 bytes, big-endian) -> crc |
// snapshot and "meta" "hardstate" -> crc | accepted | current; <path>/journal/*.log.
// Stores written before the journal kept the log in a "log" database: open() moves it.
#include <corral/storage.h>
#include <lmdb.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "crc32.h"
#include "journal.h"
#include "lmdb_settings.h"
#include "verify.h"

namespace {

using namespace corral;
using corral::lmdb::crc32;

std::string bigEndian(uint64_t v) {
  std::string k(8, '\0');
  for (int i = 7; i >= 0; --i, v >>= 8) k[i] = static_cast<char>(v & 0xff);
  return k;
}

uint64_t fromBigEndian(const MDB_val& v) {
  uint64_t out = 0;
  const auto* p = static_cast<const uint8_t*>(v.mv_data);
  for (size_t i = 0; i < v.mv_size && i < 8; ++i) out = (out << 8) | p[i];
  return out;
}

// crc(key | payload) | payload
std::string seal(const std::string& key, std::string_view payload) {
  uint32_t crc = crc32(key.data(), key.size());
  crc = crc32(payload.data(), payload.size(), crc);
  std::string out(4, '\0');
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>((crc >> (8 * i)) & 0xff);
  out.append(payload);
  return out;
}

// The payload of a sealed value, or false when its checksum does not match.
bool unseal(const MDB_val& key, const MDB_val& val, std::string_view* payload) {
  if (val.mv_size < 4) return false;
  const auto* p = static_cast<const uint8_t*>(val.mv_data);
  uint32_t stored = p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24);
  uint32_t crc = crc32(key.mv_data, key.mv_size);
  crc = crc32(p + 4, val.mv_size - 4, crc);
  if (crc != stored) return false;
  *payload = std::string_view(reinterpret_cast<const char*>(p + 4), val.mv_size - 4);
  return true;
}

MDB_val mdbVal(const std::string& s) {
  return MDB_val{s.size(), const_cast<char*>(s.data())};
}

StorageCode codeOf(int rc) {
  if (rc == MDB_MAP_FULL || rc == ENOSPC) return StorageCode::kNoSpace;
  if (rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND) return StorageCode::kCorruption;
  return StorageCode::kIoError;
}

class LmdbStorage final : public StoragePlugin {
 public:
  LmdbStorage(lmdb::Settings s, const corral_host_api* host)
      : s_(std::move(s)),
        host_(host),
        journal_(s_.path + "/journal", s_.journal_segment_mb << 20, s_.fsync,
                 [this](const std::string& msg) { hostLog(host_, CORRAL_LOG_WARN, "lmdb", msg); }) {
  }

  ~LmdbStorage() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (syncer_.joinable()) syncer_.join();
    if (env_ != nullptr) mdb_env_close(env_);
  }

  StorageCode open(ErrorBuf err) noexcept override {
    std::error_code ec;
    std::filesystem::create_directories(s_.path, ec);
    if (ec) {
      err.write("lmdb storage: cannot create " + s_.path + ": " + ec.message());
      return StorageCode::kIoError;
    }
    // Before this process maps the file: a corrupt or truncated store is refused with a
    // clear error instead of crashing the server or serving wrong data.
    std::string problem;
    if (!lmdb::verifyEnvironment(s_.path, &problem)) {
      err.write("lmdb storage: " + problem);
      return StorageCode::kCorruption;
    }
    int rc = mdb_env_create(&env_);
    if (rc == 0) rc = mdb_env_set_maxdbs(env_, 4);
    if (rc == 0) rc = mdb_env_set_mapsize(env_, s_.map_size_mb << 20);
    unsigned flags = MDB_NOTLS;
    if (!s_.fsync) flags |= MDB_NOSYNC | MDB_NOMETASYNC;
    if (rc == 0) rc = mdb_env_open(env_, s_.path.c_str(), flags, 0644);
    if (rc != 0) {
      err.write("lmdb storage: cannot open " + s_.path + "/data.mdb: " + mdb_strerror(rc));
      return codeOf(rc);
    }
    MDB_txn* txn = nullptr;
    rc = mdb_txn_begin(env_, nullptr, 0, &txn);
    if (rc == 0) rc = mdb_dbi_open(txn, "snap", MDB_CREATE, &snap_);
    if (rc == 0) rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &meta_);
    if (rc == 0) {
      rc = mdb_txn_commit(txn);
    } else if (txn != nullptr) {
      mdb_txn_abort(txn);
    }
    if (rc != 0) {
      err.write("lmdb storage: cannot open databases in " + s_.path + ": " + mdb_strerror(rc));
      return codeOf(rc);
    }

    StorageCode code = journal_.open(&problem);
    if (code != StorageCode::kOk) {
      err.write("lmdb storage: " + problem);
      return code;
    }
    code = moveLogToJournal(err);
    if (code != StorageCode::kOk) return code;
    // The newest record and snapshot set where appends continue.
    uint64_t snap = 0;
    code = lastKey(snap_, &snap, err);
    if (code != StorageCode::kOk) return code;
    last_appended_ = std::max(journal_.lastZxid(), snap);
    durable_ = last_appended_;
    syncer_ = std::thread([this] { syncLoop(); });
    return StorageCode::kOk;
  }

  void setDurableListener(DurableListener* listener) noexcept override { listener_ = listener; }

  StorageCode append(uint64_t zxid, ByteView record, ErrorBuf err) noexcept override {
    try {
      std::lock_guard<std::mutex> lock(mu_);
      if (zxid <= last_appended_) {
        err.write("append of zxid " + std::to_string(zxid) + " not above last zxid " +
                  std::to_string(last_appended_));
        return StorageCode::kInvalidArgument;
      }
      staged_.emplace_back(zxid, std::string(record.str()));
      last_appended_ = zxid;
    } catch (const std::bad_alloc&) {
      err.write("lmdb storage: out of memory staging a record");
      return StorageCode::kNoSpace;
    }
    return StorageCode::kOk;
  }

  void requestSync() noexcept override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      sync_wanted_ = true;
    }
    cv_.notify_one();
  }

  uint64_t lastZxid() const noexcept override {
    std::lock_guard<std::mutex> lock(mu_);
    return last_appended_;
  }

  StorageCode readLog(uint64_t after_zxid, LogVisitor& visitor, ErrorBuf err) noexcept override {
    std::string problem;
    StorageCode code = journal_.read(
        after_zxid,
        [&](uint64_t zxid, std::string_view record) {
          return visitor.onRecord(zxid, ByteView(record.data(), record.size()));
        },
        &problem);
    if (code != StorageCode::kOk) err.write("lmdb storage: " + problem);
    return code;
  }

  StorageCode truncateAfter(uint64_t zxid, ErrorBuf err) noexcept override {
    std::lock_guard<std::mutex> log(log_mu_);
    {
      std::lock_guard<std::mutex> lock(mu_);
      std::erase_if(staged_, [&](const auto& r) { return r.first > zxid; });
      if (last_appended_ > zxid) last_appended_ = zxid;
      if (durable_ > zxid) durable_ = zxid;
    }
    std::string problem;
    StorageCode code = journal_.truncateAfter(zxid, &problem);
    if (code != StorageCode::kOk) err.write("lmdb storage: " + problem);
    return code;
  }

  StorageCode saveSnapshot(uint64_t last_zxid, ByteView data, ErrorBuf err) noexcept override {
    std::lock_guard<std::mutex> write(write_mu_);
    MDB_txn* txn = nullptr;
    int rc = mdb_txn_begin(env_, nullptr, 0, &txn);
    if (rc != 0) return fail(err, "cannot save a snapshot", rc);
    try {
      std::string key = bigEndian(last_zxid);
      std::string sealed = seal(key, data.str());
      MDB_val k = mdbVal(key), v = mdbVal(sealed);
      rc = mdb_put(txn, snap_, &k, &v, 0);
      if (rc == 0) rc = applyRetention(txn);
    } catch (const std::bad_alloc&) {
      rc = ENOMEM;
    }
    if (rc != 0) {
      mdb_txn_abort(txn);
      return fail(err, "cannot save the snapshot at zxid " + std::to_string(last_zxid), rc);
    }
    rc = mdb_txn_commit(txn);
    if (rc != 0) return fail(err, "cannot save a snapshot", rc);
    journal_.dropThrough(oldest_snapshot_kept_);
    return StorageCode::kOk;
  }

  StorageCode loadSnapshot(SnapshotVisitor& visitor, ErrorBuf err) noexcept override {
    MDB_txn* txn = nullptr;
    int rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn);
    if (rc != 0) return fail(err, "cannot read snapshots", rc);
    MDB_cursor* cur = nullptr;
    rc = mdb_cursor_open(txn, snap_, &cur);
    MDB_val k, v;
    StorageCode code = StorageCode::kNotFound;
    // Newest first; a snapshot that fails its checksum is reported, never used.
    for (rc = rc == 0 ? mdb_cursor_get(cur, &k, &v, MDB_LAST) : rc; rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_PREV)) {
      std::string_view payload;
      if (!unseal(k, v, &payload)) {
        err.write("lmdb storage: " + s_.path + "/data.mdb: snapshot at zxid " +
                  std::to_string(fromBigEndian(k)) + " fails its checksum");
        code = StorageCode::kCorruption;
        break;
      }
      visitor.onSnapshot(fromBigEndian(k), ByteView(payload.data(), payload.size()));
      code = StorageCode::kOk;
      // The snapshot's pages were read once, into the kernel's tree: give them back, so a
      // recovered server does not carry its snapshot twice in resident memory.
      dropPages(v.mv_data, v.mv_size);
      break;
    }
    if (cur != nullptr) mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    return code;
  }

  StorageCode saveHardState(const HardState& state, ErrorBuf err) noexcept override {
    std::lock_guard<std::mutex> write(write_mu_);
    std::string key = "hardstate";
    std::string body = bigEndian(state.accepted_epoch) + bigEndian(state.current_epoch);
    std::string sealed = seal(key, body);
    MDB_txn* txn = nullptr;
    int rc = mdb_txn_begin(env_, nullptr, 0, &txn);
    if (rc != 0) return fail(err, "cannot save the epochs", rc);
    MDB_val k = mdbVal(key), v = mdbVal(sealed);
    rc = mdb_put(txn, meta_, &k, &v, 0);
    if (rc != 0) {
      mdb_txn_abort(txn);
      return fail(err, "cannot save the epochs", rc);
    }
    rc = mdb_txn_commit(txn);
    return rc == 0 ? StorageCode::kOk : fail(err, "cannot save the epochs", rc);
  }

  StorageCode loadHardState(HardState* state, ErrorBuf err) noexcept override {
    *state = HardState{};
    MDB_txn* txn = nullptr;
    int rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn);
    if (rc != 0) return fail(err, "cannot read the epochs", rc);
    std::string key = "hardstate";
    MDB_val k = mdbVal(key), v;
    rc = mdb_get(txn, meta_, &k, &v);
    StorageCode code = StorageCode::kOk;
    if (rc == 0) {
      std::string_view payload;
      if (!unseal(k, v, &payload) || payload.size() != 16) {
        err.write("lmdb storage: " + s_.path + "/data.mdb: epochs fail their checksum");
        code = StorageCode::kCorruption;
      } else {
        MDB_val a{8, const_cast<char*>(payload.data())};
        MDB_val c{8, const_cast<char*>(payload.data() + 8)};
        state->accepted_epoch = fromBigEndian(a);
        state->current_epoch = fromBigEndian(c);
      }
    } else if (rc != MDB_NOTFOUND) {
      code = fail(err, "cannot read the epochs", rc);
    }
    mdb_txn_abort(txn);
    return code;
  }

 private:
  StorageCode fail(ErrorBuf err, const std::string& what, int rc) {
    err.write("lmdb storage: " + what + " (" + s_.path + "/data.mdb): " +
              (rc == ENOMEM ? std::string("out of memory") : std::string(mdb_strerror(rc))));
    return codeOf(rc);
  }

  static void dropPages(const void* data, size_t size) {
    const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
    uintptr_t begin = reinterpret_cast<uintptr_t>(data) & ~(page - 1);
    uintptr_t end = reinterpret_cast<uintptr_t>(data) + size;
    madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
  }

  StorageCode lastKey(MDB_dbi dbi, uint64_t* out, ErrorBuf err) {
    MDB_txn* txn = nullptr;
    int rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn);
    if (rc != 0) return fail(err, "cannot read", rc);
    MDB_cursor* cur = nullptr;
    rc = mdb_cursor_open(txn, dbi, &cur);
    MDB_val k, v;
    if (rc == 0) rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    *out = rc == 0 ? fromBigEndian(k) : 0;
    if (cur != nullptr) mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    return rc == 0 || rc == MDB_NOTFOUND ? StorageCode::kOk : fail(err, "cannot read", rc);
  }

  // Keeps the newest `snapshots_retained` snapshots and the log after the oldest of them.
  int applyRetention(MDB_txn* txn) {
    MDB_cursor* cur = nullptr;
    int rc = mdb_cursor_open(txn, snap_, &cur);
    if (rc != 0) return rc;
    MDB_val k, v;
    uint32_t seen = 0;
    uint64_t oldest_kept = 0;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_LAST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_PREV)) {
      if (++seen <= s_.snapshots_retained) {
        oldest_kept = fromBigEndian(k);
        continue;
      }
      rc = mdb_cursor_del(cur, 0);
      if (rc != 0) break;
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND) return rc;
    oldest_snapshot_kept_ = oldest_kept;
    return 0;
  }

  // Stores written before the journal kept the log in LMDB: its records move to the
  // journal (durably) before they leave LMDB, so a crash in between loses nothing.
  StorageCode moveLogToJournal(ErrorBuf err) {
    MDB_txn* txn = nullptr;
    int rc = mdb_txn_begin(env_, nullptr, 0, &txn);
    if (rc != 0) return fail(err, "cannot read the old log", rc);
    MDB_dbi old_log;
    rc = mdb_dbi_open(txn, "log", 0, &old_log);
    if (rc == MDB_NOTFOUND) {
      mdb_txn_abort(txn);
      return StorageCode::kOk;
    }
    std::vector<std::pair<uint64_t, std::string>> records;
    MDB_cursor* cur = nullptr;
    if (rc == 0) rc = mdb_cursor_open(txn, old_log, &cur);
    MDB_val k, v;
    uint64_t after = journal_.lastZxid();
    for (rc = rc == 0 ? mdb_cursor_get(cur, &k, &v, MDB_FIRST) : rc; rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
      std::string_view payload;
      if (!unseal(k, v, &payload)) {
        mdb_cursor_close(cur);
        mdb_txn_abort(txn);
        err.write("lmdb storage: " + s_.path + "/data.mdb: log record for zxid " +
                  std::to_string(fromBigEndian(k)) + " fails its checksum");
        return StorageCode::kCorruption;
      }
      if (fromBigEndian(k) > after) records.emplace_back(fromBigEndian(k), std::string(payload));
    }
    if (cur != nullptr) mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND) {
      mdb_txn_abort(txn);
      return fail(err, "cannot read the old log", rc);
    }
    std::string problem;
    if (journal_.append(records, &problem) != 0) {
      mdb_txn_abort(txn);
      err.write("lmdb storage: " + problem);
      return StorageCode::kIoError;
    }
    rc = mdb_drop(txn, old_log, 1);
    if (rc == 0)
      rc = mdb_txn_commit(txn);
    else
      mdb_txn_abort(txn);
    if (rc != 0) return fail(err, "cannot remove the old log", rc);
    hostLog(
        host_, CORRAL_LOG_INFO, "lmdb",
        "moved " + std::to_string(records.size()) + " log records from data.mdb to the journal");
    return StorageCode::kOk;
  }

  // The group-commit loop: everything staged when a commit starts goes into it.
  void syncLoop() {
    std::vector<std::pair<uint64_t, std::string>> batch;
    while (true) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stopping_ || (sync_wanted_ && !staged_.empty()); });
        if (stopping_) return;
      }
      // Taken and written under log_mu_: a truncation runs before the group is taken (and
      // drops its records from staged_) or after it is written, never in between.
      std::lock_guard<std::mutex> log(log_mu_);
      {
        std::lock_guard<std::mutex> lock(mu_);
        batch.swap(staged_);
        sync_wanted_ = false;
      }
      if (batch.empty()) continue;  // a truncation took them
      std::string error;
      int rc = journal_.append(batch, &error);
      uint64_t last = batch.back().first;
      batch.clear();
      if (rc == 0) {
        {
          std::lock_guard<std::mutex> lock(mu_);
          if (last > durable_) durable_ = last;
        }
        if (listener_ != nullptr) listener_->onDurable(last, StorageCode::kOk, ByteView());
      } else {
        std::string msg = "lmdb storage: cannot make log records up to zxid " +
                          std::to_string(last) + " durable: " + error;
        hostLog(host_, CORRAL_LOG_ERROR, "lmdb", msg);
        {
          std::lock_guard<std::mutex> lock(mu_);
          last_appended_ = durable_;
          staged_.clear();  // the kernel fails them all and truncates
        }
        if (listener_ != nullptr)
          listener_->onDurable(last, codeOf(rc), ByteView(msg.data(), msg.size()));
      }
    }
  }

  lmdb::Settings s_;
  const corral_host_api* host_;
  MDB_env* env_ = nullptr;
  MDB_dbi snap_ = 0, meta_ = 0;
  lmdb::Journal journal_;
  uint64_t oldest_snapshot_kept_ = 0;  // set by applyRetention under write_mu_
  DurableListener* listener_ = nullptr;

  mutable std::mutex mu_;  // staged records and counters
  std::condition_variable cv_;
  std::vector<std::pair<uint64_t, std::string>> staged_;
  uint64_t last_appended_ = 0;
  uint64_t durable_ = 0;
  bool sync_wanted_ = false;
  bool stopping_ = false;
  std::mutex write_mu_;  // one LMDB write transaction at a time, from any thread
  // One change of the journal at a time (a group written, a truncation). Apart from
  // write_mu_, so saving a large snapshot into LMDB does not hold up group commits.
  std::mutex log_mu_;
  std::thread syncer_;
};

StoragePlugin* createLmdb(std::string_view config, const corral_host_api* host, ErrorBuf err) {
  auto settings = corral::lmdb::parseSettings(config, host ? host->data_dir : nullptr, err);
  if (!settings) return nullptr;
  return new LmdbStorage(std::move(*settings), host);
}

}  // namespace

CORRAL_DEFINE_PLUGIN(CORRAL_PLUGIN_STORAGE, corral::StoragePlugin, "lmdb", "1.0.0", createLmdb)
