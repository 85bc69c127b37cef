// A deterministic simulation of a Corral ensemble's ZAB layer: Zab instances on a simulated
// clock, network (per-link FIFO, delays, link breaks, partitions, optional silent drops) and
// disk (staged vs. durable records: a crash loses what was not yet durable), with clients
// writing through any serving server and invariant checks on every step.
//
// Everything derives from one seed, so a failing schedule reproduces exactly.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "zab/zab.h"

namespace corral::zab::sim {

struct SimOptions {
  int voters = 3;
  int observers = 0;
  uint64_t seed = 1;
  int64_t tick_ms = 50;
  int64_t init_limit = 10;
  int64_t sync_limit = 5;
  int64_t max_counter = 0xfffffffeLL;
  size_t max_history = 20000;
  int64_t snapshot_every = 0;  // applied txns between a server's own snapshots (0: never)
  // Randomised faults, per simulated millisecond.
  double crash_rate = 0;
  double partition_rate = 0;
  double drop_rate = 0;      // silent loss of single messages (fault injection)
  double write_rate = 0.2;   // client writes
  int64_t max_delay_ms = 3;  // network delay per message, 0..max
  int64_t max_fsync_ms = 2;  // time a sync takes, 0..max
};

struct Record {
  int64_t zxid;
  std::string data;
  bool operator==(const Record&) const = default;
};

class Sim {
 public:
  explicit Sim(SimOptions options);
  ~Sim();

  // Runs every event up to t (ms of simulated time), injecting random faults and writes
  // when `chaos` is on.
  void runUntil(int64_t t, bool chaos);
  // Runs until pred() holds or the deadline passes; returns pred().
  bool runUntil(const std::function<bool()>& pred, int64_t deadline);
  // After a chaotic period: heals every link, restarts every server, stops silent drops,
  // and checks the ensemble converges: a leader serves, a write commits, every server
  // applies the same sequence. False (with failure()) otherwise.
  bool settle(int64_t within_ms);

  // --- controls for scripted scenarios ---
  void crash(int64_t id);
  void restart(int64_t id);
  void cut(int64_t a, int64_t b);  // both directions
  void heal(int64_t a, int64_t b);
  void isolate(int64_t id);
  void healAll();
  // A client write through server id; returns the op number (0: that server cannot take it).
  int64_t write(int64_t via);

  int64_t now() const { return now_; }
  const std::string& failure() const { return failure_; }
  bool ok() const { return failure_.empty(); }
  std::vector<int64_t> ids() const;
  bool up(int64_t id) const;
  Zab* zab(int64_t id);
  int64_t servingLeader() const;  // 0: none
  const std::vector<Record>& applied(int64_t id) const;
  std::vector<Record> log(int64_t id) const;
  bool acked(int64_t op) const { return acked_.count(op) != 0; }
  size_t ackedCount() const { return acked_.size(); }
  const std::vector<Record>& committedSequence() const { return global_; }
  // Roles each server went through as (role, epoch), and leaders per epoch.
  const std::map<int64_t, int64_t>& leadersByEpoch() const { return leaders_; }
  int64_t lookingTransitions(int64_t id) const;
  std::string trace() const;  // the recent events, for a failing seed

 private:
  struct Node;
  class NodeOutput;
  struct Link;
  struct Event {
    int64_t time;
    uint64_t seq;
    std::function<void()> fn;
    bool operator>(const Event& o) const { return time != o.time ? time > o.time : seq > o.seq; }
  };

  void at(int64_t time, std::function<void()> fn);
  void fail(const std::string& why);
  void note(const std::string& line);
  Node& node(int64_t id);
  void startNode(Node& n);
  void send(int64_t from, int64_t to, std::string msg);
  bool connected(int64_t a, int64_t b) const;
  void linkChanged(int64_t a, int64_t b);
  void onCommit(Node& n, int64_t zxid, const std::string& record);
  void checkPrefix(Node& n);
  void randomFaults();
  void timers();

  SimOptions opt_;
  std::mt19937_64 rng_;
  int64_t now_ = 0;
  uint64_t seq_ = 0;
  std::vector<Event> events_;  // a heap
  std::map<int64_t, std::unique_ptr<Node>> nodes_;
  std::set<std::pair<int64_t, int64_t>> cut_;  // (min, max) pairs
  std::map<std::pair<int64_t, int64_t>, int64_t> link_gen_;
  std::map<std::pair<int64_t, int64_t>, int64_t> link_last_delivery_;
  std::map<std::pair<int64_t, int64_t>, bool> link_up_;
  std::vector<Record> global_;
  std::map<int64_t, int64_t> acked_;  // op -> zxid
  size_t acked_max_index_ = 0;
  bool any_acked_ = false;
  std::map<int64_t, int64_t> leaders_;
  int64_t next_op_ = 1;
  bool drops_ = false;
  bool verbose_ = false;  // CORRAL_SIM_VERBOSE: trace every protocol message
  std::string failure_;
  std::vector<std::string> trace_;
};

}  // namespace corral::zab::sim
