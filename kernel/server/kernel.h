// Kernel: a standalone Corral server's brain. Connections, the session handshake, sessions
// and their expiry, the request pipeline (read now / write: prepare -> txn -> durable ->
// apply -> reply), per-session ordering and watch delivery.
//
// Deterministic and single-threaded: every input carries the time, every output goes through
// KernelOutput; it reads no clock, draws randomness only from its seed and does no I/O. The
// driver (kernel/driver) feeds it from the transports' and the storage's threads; tests feed
// it directly with a simulated clock.
#pragma once

#include <corral/plugin_abi.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "state/auth_registry.h"
#include "state/state_machine.h"

namespace corral::kernel {

// Where the kernel's decisions go.
class KernelOutput {
 public:
  virtual ~KernelOutput() = default;
  virtual void send(uint64_t conn, std::string frame) = 0;
  virtual void close(uint64_t conn) = 0;
  // Stages one txn record in storage; false (with a reason) if storage refused it.
  virtual bool append(int64_t zxid, const std::string& record, std::string* error) = 0;
  virtual void requestSync() = 0;
  // Drops staged records above zxid after a storage failure.
  virtual void truncateAfter(int64_t zxid) = 0;
  // Time for a snapshot: state() now holds every txn up to zxid and nothing after it. The
  // output takes it (state().snapshot()) before the next input, in whatever way keeps the
  // kernel serving (the driver forks and serialises in the child).
  virtual void snapshotDue(int64_t zxid) = 0;
  virtual void log(corral_log_level level, const std::string& message) = 0;
};

struct KernelOptions {
  int64_t server_id = 1;
  int32_t min_session_timeout_ms = 400;
  int32_t max_session_timeout_ms = 40000;
  uint64_t max_request_bytes = 1048575;
  uint64_t seed = 0;                // session ids and passwords derive from it
  int64_t snapshot_every = 100000;  // txns between snapshots (ZooKeeper's snapCount)
};

class Kernel {
 public:
  Kernel(KernelOptions options, const AuthRegistry* auth, KernelOutput* out);
  ~Kernel();
  Kernel(const Kernel&) = delete;
  Kernel& operator=(const Kernel&) = delete;

  // --- recovery, before start() ---
  bool restoreSnapshot(std::string_view snapshot, std::string* error);
  // Re-applies one logged txn (in zxid order).
  bool replay(int64_t zxid, std::string_view record, std::string* error);
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

  const StateMachine& state() const;
  // The state's describe() plus the kernel's own counts ("stats" gains connections and
  // outstanding requests).
  std::string describe(const std::string& question) const;
  size_t connectionCount() const;
  size_t sessionCount() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace corral::kernel
