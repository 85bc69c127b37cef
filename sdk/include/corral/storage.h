// StoragePlugin: where a Corral server keeps its transaction log, its snapshots of the znode
// tree and its ZAB epochs. Implementations: plugins/storage/memory (volatile, for tests and
// throw-away servers) and plugins/storage/lmdb (durable).
//
// The kernel never reads a record's bytes' meaning from here: records and snapshots are
// opaque, checksummed by the plugin if it wants, and handed back verbatim at recovery.
//
// Durability contract (the ZAB rule "ack only after durable"): append() only stages a record.
// A record is durable once the plugin has reported it to its DurableListener. The kernel
// answers a write, or acks a proposal, only after that report. Plugins should group-commit:
// records staged while a sync is in progress are synced together by the next one.
//
// Failure policy: a server that cannot persist stops making progress. A plugin reports an
// error; the kernel fails the affected writes back to clients with an error and never
// acknowledges anything that was not reported durable.
//
// Thread-safety: every method is called from the kernel thread only, except saveSnapshot(),
// which the host calls from a background thread (one call at a time) while the kernel goes
// on appending: a plugin must make it safe against its other methods. The DurableListener
// is called from a thread of the plugin's choosing (often its own sync thread).
#pragma once

#include <corral/plugin.h>

#include <cstdint>

namespace corral {

enum class StorageCode : int32_t {
  kOk = 0,
  kIoError = 1,          // read/write/sync failed (message says which file and why)
  kCorruption = 2,       // checksum or framing mismatch (message names file and zxid)
  kNoSpace = 3,          // disk full or LMDB map full
  kInvalidArgument = 4,  // e.g. append with a zxid not above lastZxid()
  kNotFound = 5,         // e.g. no snapshot exists
};

// The ZAB epochs that must survive restarts, written atomically together.
struct HardState {
  uint64_t accepted_epoch = 0;
  uint64_t current_epoch = 0;
};

class DurableListener {
 public:
  virtual ~DurableListener() = default;
  // Every record with zxid <= durable_zxid is durable. Called with increasing zxids.
  // On a sync failure code != kOk and message says why; no later record is durable.
  virtual void onDurable(uint64_t durable_zxid, StorageCode code, ByteView message) noexcept = 0;
};

class LogVisitor {
 public:
  virtual ~LogVisitor() = default;
  // One log record, in zxid order. Return false to stop the scan.
  virtual bool onRecord(uint64_t zxid, ByteView record) noexcept = 0;
};

class SnapshotVisitor {
 public:
  virtual ~SnapshotVisitor() = default;
  // The newest valid snapshot, taken at last_zxid, as the bytes that were saved.
  virtual void onSnapshot(uint64_t last_zxid, ByteView data) noexcept = 0;
};

class StoragePlugin {
 public:
  virtual ~StoragePlugin() = default;

  // Opens or creates the store and checks its integrity. Called once, before anything else.
  virtual StorageCode open(ErrorBuf err) noexcept = 0;

  // The listener outlives the plugin instance; set before the first append().
  virtual void setDurableListener(DurableListener* listener) noexcept = 0;

  // Stages one record. zxid must be greater than every zxid appended before.
  // The record is not durable until the listener says so.
  virtual StorageCode append(uint64_t zxid, ByteView record, ErrorBuf err) noexcept = 0;

  // Asks for everything appended so far to be made durable; returns at once. The listener
  // is called when it is (possibly together with later appends).
  virtual void requestSync() noexcept = 0;

  // Highest zxid appended (durable or not); 0 when the log is empty.
  virtual uint64_t lastZxid() const noexcept = 0;

  // Visits every record with zxid > after_zxid in order.
  virtual StorageCode readLog(uint64_t after_zxid, LogVisitor& visitor, ErrorBuf err) noexcept = 0;

  // Drops every record with zxid > zxid (ZAB TRUNC). Durable when it returns.
  virtual StorageCode truncateAfter(uint64_t zxid, ErrorBuf err) noexcept = 0;

  // Saves a snapshot of the state after applying every txn up to last_zxid. Durable when it
  // returns. The plugin may then discard log records no longer needed by its retention policy.
  virtual StorageCode saveSnapshot(uint64_t last_zxid, ByteView data, ErrorBuf err) noexcept = 0;

  // Hands the newest valid snapshot to the visitor; kNotFound when there is none.
  virtual StorageCode loadSnapshot(SnapshotVisitor& visitor, ErrorBuf err) noexcept = 0;

  virtual StorageCode saveHardState(const HardState& state, ErrorBuf err) noexcept = 0;
  // A store that never saved one reports {0, 0}.
  virtual StorageCode loadHardState(HardState* state, ErrorBuf err) noexcept = 0;
};

}  // namespace corral
