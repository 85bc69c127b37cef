#include "peer_outbox.h"

#include <sys/eventfd.h>
#include <unistd.h>

namespace corral::zmqtransport {

PeerOutbox::PeerOutbox() : wake_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}

PeerOutbox::~PeerOutbox() {
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void PeerOutbox::push(PeerOutgoing out) {
  std::lock_guard<std::mutex> lock(mu_);
  queue_.push_back(std::move(out));
  if (queue_.size() == 1) wakeLocked();
}

std::deque<PeerOutgoing> PeerOutbox::drain() {
  // Reset the eventfd before taking the queue: a push after the swap finds the queue empty
  // and writes the eventfd again, so nothing waits for the poll timeout.
  uint64_t count;
  ssize_t ignored = ::read(wake_fd_, &count, sizeof(count));
  (void)ignored;
  std::deque<PeerOutgoing> taken;
  std::lock_guard<std::mutex> lock(mu_);
  taken.swap(queue_);
  return taken;
}

void PeerOutbox::clear() {
  std::deque<PeerOutgoing> dropped;
  std::lock_guard<std::mutex> lock(mu_);
  dropped.swap(queue_);
}

void PeerOutbox::wake() {
  std::lock_guard<std::mutex> lock(mu_);
  wakeLocked();
}

void PeerOutbox::wakeLocked() {
  uint64_t one = 1;
  ssize_t ignored = ::write(wake_fd_, &one, sizeof(one));
  (void)ignored;
}

}  // namespace corral::zmqtransport
