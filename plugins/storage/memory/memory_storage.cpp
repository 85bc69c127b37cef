// The "memory" storage plugin: the log, snapshots and epochs in RAM. Nothing survives the
// process; for tests and throw-away servers. Everything appended is "durable" as soon as a
// sync is requested, reported inline (the host's listener only enqueues).
#include <corral/storage.h>

#include <map>
#include <mutex>
#include <string>

#include "common/plugin_config.h"

namespace {

using namespace corral;

class MemoryStorage final : public StoragePlugin {
 public:
  StorageCode open(ErrorBuf) noexcept override { return StorageCode::kOk; }
  void setDurableListener(DurableListener* listener) noexcept override { listener_ = listener; }

  StorageCode append(uint64_t zxid, ByteView record, ErrorBuf err) noexcept override {
    std::lock_guard<std::mutex> lock(mu_);
    if (zxid <= lastLocked()) {
      err.write("append of zxid " + std::to_string(zxid) + " not above last zxid " +
                std::to_string(lastLocked()));
      return StorageCode::kInvalidArgument;
    }
    try {
      log_.emplace(zxid, std::string(record.str()));
    } catch (const std::bad_alloc&) {
      err.write("out of memory");
      return StorageCode::kNoSpace;
    }
    return StorageCode::kOk;
  }

  void requestSync() noexcept override {
    std::lock_guard<std::mutex> lock(mu_);
    uint64_t last = lastLocked();
    if (listener_ != nullptr && last > reported_) {
      reported_ = last;
      listener_->onDurable(last, StorageCode::kOk, ByteView());
    }
  }

  uint64_t lastZxid() const noexcept override {
    std::lock_guard<std::mutex> lock(mu_);
    return lastLocked();
  }

  StorageCode readLog(uint64_t after_zxid, LogVisitor& visitor, ErrorBuf) noexcept override {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = log_.upper_bound(after_zxid); it != log_.end(); ++it) {
      if (!visitor.onRecord(it->first, ByteView(it->second.data(), it->second.size()))) break;
    }
    return StorageCode::kOk;
  }

  StorageCode truncateAfter(uint64_t zxid, ErrorBuf) noexcept override {
    std::lock_guard<std::mutex> lock(mu_);
    log_.erase(log_.upper_bound(zxid), log_.end());
    if (reported_ > zxid) reported_ = zxid;
    return StorageCode::kOk;
  }

  StorageCode saveSnapshot(uint64_t last_zxid, ByteView data, ErrorBuf err) noexcept override {
    std::lock_guard<std::mutex> lock(mu_);
    try {
      snapshot_.assign(data.str());
    } catch (const std::bad_alloc&) {
      err.write("out of memory");
      return StorageCode::kNoSpace;
    }
    snapshot_zxid_ = last_zxid;
    has_snapshot_ = true;
    // The log up to the snapshot is no longer needed.
    log_.erase(log_.begin(), log_.upper_bound(last_zxid));
    return StorageCode::kOk;
  }

  StorageCode loadSnapshot(SnapshotVisitor& visitor, ErrorBuf) noexcept override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!has_snapshot_) return StorageCode::kNotFound;
    visitor.onSnapshot(snapshot_zxid_, ByteView(snapshot_.data(), snapshot_.size()));
    return StorageCode::kOk;
  }

  StorageCode saveHardState(const HardState& state, ErrorBuf) noexcept override {
    std::lock_guard<std::mutex> lock(mu_);
    hard_state_ = state;
    return StorageCode::kOk;
  }
  StorageCode loadHardState(HardState* state, ErrorBuf) noexcept override {
    std::lock_guard<std::mutex> lock(mu_);
    *state = hard_state_;
    return StorageCode::kOk;
  }

 private:
  uint64_t lastLocked() const { return log_.empty() ? snapshot_zxid_ : log_.rbegin()->first; }

  // saveSnapshot() comes from the host's snapshot thread; everything else from the kernel's.
  mutable std::mutex mu_;
  DurableListener* listener_ = nullptr;
  std::map<uint64_t, std::string> log_;
  uint64_t reported_ = 0;
  std::string snapshot_;
  uint64_t snapshot_zxid_ = 0;
  bool has_snapshot_ = false;
  HardState hard_state_;
};

StoragePlugin* createMemoryStorage(std::string_view config, const corral_host_api*, ErrorBuf err) {
  auto table = corral::plugins::parseConfig(config, err);
  if (!table || !corral::plugins::onlyKnownKeys(*table, {}, "memory storage", err)) return nullptr;
  return new MemoryStorage();
}

}  // namespace

CORRAL_DEFINE_PLUGIN(CORRAL_PLUGIN_STORAGE, corral::StoragePlugin, "memory", "1.0.0",
                     createMemoryStorage)
