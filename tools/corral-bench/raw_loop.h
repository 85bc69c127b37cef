// The raw driver's engine: one thread, one epoll set, many sessions, each keeping a window
// of pipelined requests outstanding. What to send is up to a Plan; the loop does the I/O,
// the xids, the pings and the latencies.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "jute.h"
#include "raw_connection.h"

namespace corral::bench {

// What one phase of a run (setup, the timed part, cleanup) asks of each session. A loop
// calls its plan from its own thread only, and only for its own sessions, so per-session
// state in a plan needs no lock; state shared by sessions of different loops must be atomic.
class Plan {
 public:
  virtual ~Plan() = default;
  // Appends session `index`'s next request frame to *out (its xid is patched by the loop).
  // False when the session has nothing more to send in this phase.
  virtual bool next(int index, std::string* out) = 0;
  // The reply to session `index`'s oldest unanswered request (replies come in send order);
  // `body` is positioned after the reply header.
  virtual void reply(int index, int32_t err, JuteReader body) = 0;
};

struct Phase {
  int window = 1;                                 // requests outstanding per session
  Clock::time_point stop_at;                      // no new requests from then on
  Clock::time_point give_up;                      // replies still missing then fail the phase
  std::vector<uint32_t>* latencies_us = nullptr;  // if set, one entry per reply
};

class RawLoop {
 public:
  RawLoop();
  ~RawLoop();
  RawLoop(const RawLoop&) = delete;
  RawLoop& operator=(const RawLoop&) = delete;

  // Adds a session; `index` is its number in the plans. The connection must outlive the loop.
  void add(RawConnection* conn, int index);

  // Runs `plan` until every session's plan is exhausted (or phase.stop_at passes) and every
  // request is answered. False with *err when a connection fails or closes, a reply is
  // malformed or out of order, or replies are still missing at phase.give_up.
  bool run(Plan& plan, const Phase& phase, std::string* err);

 private:
  struct Sent {
    Clock::time_point at;
    int32_t xid;
  };
  struct Slot {
    RawConnection* conn = nullptr;
    int index = 0;
    std::vector<Sent> ring;  // the outstanding requests, oldest at head
    size_t head = 0;
    int outstanding = 0;
    bool exhausted = false;
    bool want_write = false;  // EPOLLOUT is armed
    Clock::time_point last_send;
  };

  void refill(Slot& s, Plan& plan, int window);
  void pingIfIdle(Slot& s, Clock::time_point now);
  bool flush(Slot& s, std::string* err);
  bool receive(Slot& s, Plan& plan, std::vector<uint32_t>* latencies, std::string* err);
  bool fail(const Slot& s, const std::string& what, std::string* err) const;

  int epoll_fd_;
  std::vector<Slot> slots_;
};

}  // namespace corral::bench
