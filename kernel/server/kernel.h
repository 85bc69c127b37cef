// Kernel: a Corral server's brain. Connections, the session handshake, sessions and their
// expiry, the request pipeline (read now / write: prepare -> txn -> durable -> apply ->
// reply), per-session ordering and watch delivery. Standalone, a write is committed once it
// is durable here; in an ensemble (KernelOptions::ensemble) the kernel runs ZAB
// (kernel/zab): the leader prepares and proposes writes, followers and observers forward
// them, and every server applies what the quorum committed.
//
// Deterministic and single-threaded: every input carries the time, every output goes through
// KernelOutput; it reads no clock, draws randomness only from its seed and does no I/O. The
// driver (kernel/driver) feeds it from the transports' and the storage's threads; tests feed
// it directly with a simulated clock.
#pragma once

#include <corral/plugin_abi.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "state/auth_registry.h"
#include "state/state_machine.h"
#include "zab/zab.h"

namespace corral::kernel {

// Where the kernel's decisions go.
class KernelOutput {
 public:
  virtual ~KernelOutput() = default;
  virtual void send(uint64_t conn, std::string frame) = 0;
  virtual void close(uint64_t conn) = 0;
  // Stages one txn record in storage; false (with a reason) if storage refused it.
  virtual bool append(int64_t zxid, std::string_view record, std::string* error) = 0;
  virtual void requestSync() = 0;
  // Drops staged records above zxid after a storage failure.
  virtual void truncateAfter(int64_t zxid) = 0;
  // Time for a snapshot: state() now holds every txn up to zxid and nothing after it. The
  // output takes it (state().snapshot()) before the next input, in whatever way keeps the
  // kernel serving (the driver forks and serialises in the child).
  virtual void snapshotDue(int64_t zxid) = 0;
  virtual void log(corral_log_level level, const std::string& message) = 0;

  // --- an ensemble member only ---
  // One message to another server (ZAB's and the kernel's own, opaque).
  virtual void sendPeer(int64_t /*peer*/, std::string /*message*/) {}
  // The epochs, durable on return.
  virtual bool saveHardState(const zab::HardState& /*state*/) { return false; }
  // Drops every log record above zxid, durable on return (ZAB TRUNC).
  virtual bool truncateLog(int64_t /*zxid*/, std::string* error) {
    *error = "not supported";
    return false;
  }
  // The leader's snapshot replaces this server's state: store it as the newest snapshot and
  // empty the log (whatever it held is older than the snapshot or not in the leader's
  // history), durable on return.
  virtual bool installSnapshot(int64_t /*zxid*/, std::string_view /*data*/, std::string* error) {
    *error = "not supported";
    return false;
  }
};

struct KernelOptions {
  int64_t server_id = 1;
  int32_t min_session_timeout_ms = 400;
  int32_t max_session_timeout_ms = 40000;
  uint64_t max_request_bytes = 1048575;
  uint64_t seed = 0;                // session ids and passwords derive from it
  int64_t snapshot_every = 100000;  // txns between snapshots (ZooKeeper's snapCount)
  // Set: this server is a member of an ensemble (self_id, voters, observers, ticks).
  std::optional<zab::ZabOptions> ensemble;
};

class Kernel {
 public:
  Kernel(KernelOptions options, const AuthRegistry* auth, KernelOutput* out);
  ~Kernel();
  Kernel(const Kernel&) = delete;
  Kernel& operator=(const Kernel&) = delete;

  // --- recovery, before start() ---
  bool restoreSnapshot(std::string_view snapshot, std::string* error);
  // An ensemble member's epochs, after the snapshot and before the log.
  void restoreHardState(const zab::HardState& state);
  // One logged txn after the snapshot (in zxid order). Standalone it is applied; in an
  // ensemble it is history that the leader will confirm (or truncate) before it is applied.
  bool replay(int64_t zxid, std::string_view record, std::string* error);
  // Room for this many more znodes: a replay that will create them skips the rehashing.
  void reserveNodes(size_t more);
  // Starts serving at now_ms: recovered sessions get a full timeout from now.
  void start(int64_t now_ms);

  // --- inputs ---
  void onOpen(uint64_t conn, std::string_view remote_addr, int64_t now_ms);
  void onFrame(uint64_t conn, std::string_view frame, int64_t now_ms);
  void onClose(uint64_t conn, int64_t now_ms);
  // Storage reports every txn up to zxid durable (ok) or a failure.
  void onDurable(int64_t zxid, bool ok, const std::string& message, int64_t now_ms);
  // Called every tick: session expiry and container/TTL cleanup.
  void onTick(int64_t now_ms);
  // --- an ensemble member only ---
  void onPeerUp(int64_t peer, int64_t now_ms);
  void onPeerDown(int64_t peer, int64_t now_ms);
  void onPeerMessage(int64_t peer, std::string_view message, int64_t now_ms);
  // Called often (every few ms): election and failure-detection timers.
  void onTimer(int64_t now_ms);
  // Role, epoch, zxids, followers (null when standalone).
  std::optional<zab::ZabStatus> ensembleStatus() const;

  const StateMachine& state() const;
  // The state's describe() plus the kernel's own counts ("stats" gains connections,
  // outstanding requests and, in an ensemble, the server's role and followers).
  std::string describe(const std::string& question) const;
  size_t connectionCount() const;
  size_t sessionCount() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace corral::kernel
