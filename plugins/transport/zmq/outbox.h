// The hand-off between the kernel thread (send/close) and the transport's I/O thread.
//
// ZeroMQ sockets must not be used from two threads, so the kernel never touches the ROUTER:
// it queues frames and close requests here and wakes the I/O thread through an eventfd that
// the I/O thread polls together with the ROUTER (zmq_poll accepts plain fds). The wake-up
// is immediate, so replies do not wait for a poll timeout.
//
// The open set also lives here so that send() can answer kUnknownConnection at once.
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <unordered_set>
#include <zmq.hpp>

namespace corral::zmqtransport {

struct Outgoing {
  uint64_t conn = 0;
  zmq::message_t frame;  // built on the kernel thread: the only copy of the bytes
  bool close = false;    // a close request: forget the connection after earlier frames
};

class Outbox {
 public:
  Outbox();
  ~Outbox();
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;

  bool valid() const { return wake_fd_ >= 0; }
  // The fd the I/O thread polls for POLLIN.
  int wakeFd() const { return wake_fd_; }

  // Kernel side. push() is false when conn is not open (never was, or closed).
  bool push(uint64_t conn, zmq::message_t frame);
  // Marks conn closed at once (later push() fails) and queues the close after its frames.
  // False when conn was not open.
  bool requestClose(uint64_t conn);

  // I/O side.
  void markOpen(uint64_t conn);
  void forget(uint64_t conn);    // the I/O thread closed conn itself
  bool isOpen(uint64_t conn);    // false once close was requested
  std::deque<Outgoing> drain();  // clears the wake-up, then takes everything queued
  void clear();                  // at stop: drop everything, nothing is open any more
  void wake();                   // also used by stop() to interrupt the poll

 private:
  void wakeLocked();  // writes the eventfd when the queue just became non-empty

  std::mutex mu_;
  std::unordered_set<uint64_t> open_;
  std::deque<Outgoing> queue_;
  int wake_fd_ = -1;
};

}  // namespace corral::zmqtransport
