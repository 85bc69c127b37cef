// Ensemble: a real Corral ensemble of corrald processes on 127.0.0.1 for cluster tests —
// generated configs with free ports, each server in its own data dir, started, killed
// (SIGKILL), hung (SIGSTOP) and partitioned (peer-faults) by PID, and asked for its role
// through ZooKeeper's mntr.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "child_process.h"
#include "temp_dir.h"

namespace corral::testing {

struct EnsembleOptions {
  int voters = 3;
  int observers = 0;
  std::string storage = "lmdb";  // with sync = "fsync"
  std::string peer = "tcp";      // the peer transport plugin
  // 500 ms without word from a peer ends its link: short enough for quick tests, long
  // enough that a loaded 2-core CI machine does not hold spurious elections all the time.
  int tick_ms = 100;
  int init_limit = 10;
  int sync_limit = 5;
  int min_session_timeout_ms = 200;
  int max_session_timeout_ms = 20000;
  std::string extra_toml;  // appended to every server's config
};

class Ensemble {
 public:
  Ensemble(const TempDir& dir, EnsembleOptions options);
  ~Ensemble();

  // Server ids: voters 1..voters, observers after them.
  std::vector<int> ids() const;
  bool isObserver(int id) const { return id > options_.voters; }

  void start(int id);
  void startAll();
  // Waits until the server prints its client transports' addresses.
  bool waitStarted(int id, milliseconds timeout = milliseconds(20000));
  void kill(int id);    // SIGKILL, then reaped
  void stop(int id);    // SIGTERM
  void pause(int id);   // SIGSTOP: hung, not dead
  void resume(int id);  // SIGCONT
  bool running(int id) const;
  ChildProcess& process(int id) { return *processes_.at(id); }

  // "tcp://127.0.0.1:PORT" (native) and "127.0.0.1:PORT" (zkwire).
  std::string nativeAddress(int id) const;
  std::string zkwireAddress(int id) const;
  std::vector<std::string> nativeAddresses(const std::vector<int>& ids) const;
  std::string dataDir(int id) const;
  std::string configPath(int id) const { return config_paths_.at(id); }

  // ZooKeeper's mntr from the server ("" when it does not answer), and what it says.
  std::string mntr(int id) const;
  std::string role(int id) const;  // zk_server_state, or "" when not serving
  // The one serving leader among the running servers once every running server serves
  // (0 at the deadline).
  int waitLeader(milliseconds timeout = milliseconds(20000)) const;
  // Waits until the server serves (as any role).
  bool waitServing(int id, milliseconds timeout = milliseconds(20000)) const;

  // Peer faults on one server (peer_faults.h rules, e.g. "cut 2\ncut 3\n"; "" heals).
  void setFaults(int id, const std::string& rules);
  // Cuts id off from every other server, in both directions.
  void isolate(int id);
  void healAll();

 private:
  const TempDir& dir_;
  EnsembleOptions options_;
  std::map<int, int> peer_ports_, native_ports_, zkwire_ports_;
  std::map<int, std::string> config_paths_;
  std::map<int, std::unique_ptr<ChildProcess>> processes_;
  std::map<int, int> starts_;
};

// Prints the last `lines` lines of every server log in dir (for a failed test's report:
// CI keeps only the test's output).
void printServerLogTails(const TempDir& dir, size_t lines = 60);

// Sends a four-letter word to host:port and returns the answer ("" when none).
std::string fourLetterWord(const std::string& address, const std::string& word);

}  // namespace corral::testing
