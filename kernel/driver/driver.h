// Driver: the threaded shell around the Kernel. Transports' and storage's threads post
// events into one queue; the kernel thread takes them in order, plus a tick every tick_ms,
// and carries the kernel's outputs to the plugins.
#pragma once

#include <corral/client_transport.h>
#include <corral/peer_transport.h>
#include <corral/storage.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "server/kernel.h"

namespace corral::kernel {

class Driver {
 public:
  using LogFn = std::function<void(corral_log_level, const std::string&)>;

  // Snapshots are serialised by a forked child into a temporary file in snapshot_dir.
  Driver(KernelOptions options, const AuthRegistry* auth, StoragePlugin* storage, int64_t tick_ms,
         LogFn log, std::string snapshot_dir);
  ~Driver();

  // Recovery, before start(): the newest snapshot and the log after it, from storage.
  bool recover(std::string* error);
  // What recovery rebuilt (before start(): the kernel thread is not running yet).
  size_t nodeCount() const;
  int64_t lastZxid() const;
  // A sink for the transport that will be started next; frames to its connections go back
  // through it. Call before start().
  ClientSink* addTransport(ClientTransport* transport);
  // An ensemble member's link to the other servers, and the file of injected faults
  // (peer_faults.h). Call before start(); start the transport after start().
  PeerSink* setPeerTransport(PeerTransport* transport, std::string faults_path);
  void start();
  // Stops the kernel thread; transports must be stopped first.
  void stop();

  // The current time as the kernel sees it: wall-clock milliseconds, advancing monotonically.
  int64_t nowMs() const;

  // corral_host_api.query, with host_ctx = the Driver: asks the kernel thread and waits (at
  // most 2 s) for its answer.
  static size_t query(void* driver, const char* question, char* buf, size_t cap);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace corral::kernel
