// The hand-off from the kernel thread (PeerTransport::send) to the peer transport's I/O
// thread: a mutexed queue plus an eventfd the I/O thread polls beside its sockets, as in
// the client transport's Outbox. One queue for all peers keeps each peer's messages in the
// order send() was called.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <zmq.hpp>

namespace corral::zmqtransport {

struct PeerOutgoing {
  size_t peer = 0;      // index of the peer in the membership
  uint64_t link = 0;    // the link generation send() saw; stale messages are dropped
  zmq::message_t body;  // built on the kernel thread: the only copy of the bytes
};

class PeerOutbox {
 public:
  PeerOutbox();
  ~PeerOutbox();
  PeerOutbox(const PeerOutbox&) = delete;
  PeerOutbox& operator=(const PeerOutbox&) = delete;

  bool valid() const { return wake_fd_ >= 0; }
  int wakeFd() const { return wake_fd_; }  // polled by the I/O thread for POLLIN

  void push(PeerOutgoing out);       // kernel side
  std::deque<PeerOutgoing> drain();  // I/O side: clears the wake-up, takes everything
  void clear();                      // drops everything queued
  void wake();                       // interrupts the I/O thread's poll

 private:
  void wakeLocked();

  std::mutex mu_;
  std::deque<PeerOutgoing> queue_;
  int wake_fd_ = -1;
};

}  // namespace corral::zmqtransport
