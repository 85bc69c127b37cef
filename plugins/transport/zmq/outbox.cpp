#include "outbox.h"

#include <sys/eventfd.h>
#include <unistd.h>

namespace corral::zmqtransport {

Outbox::Outbox() : wake_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}

Outbox::~Outbox() {
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

bool Outbox::push(uint64_t conn, zmq::message_t frame) {
  std::lock_guard<std::mutex> lock(mu_);
  if (open_.count(conn) == 0) return false;
  queue_.push_back(Outgoing{conn, std::move(frame), false});
  if (queue_.size() == 1) wakeLocked();
  return true;
}

bool Outbox::requestClose(uint64_t conn) {
  std::lock_guard<std::mutex> lock(mu_);
  if (open_.erase(conn) == 0) return false;
  queue_.push_back(Outgoing{conn, zmq::message_t(), true});
  if (queue_.size() == 1) wakeLocked();
  return true;
}

void Outbox::markOpen(uint64_t conn) {
  std::lock_guard<std::mutex> lock(mu_);
  open_.insert(conn);
}

void Outbox::forget(uint64_t conn) {
  std::lock_guard<std::mutex> lock(mu_);
  open_.erase(conn);
}

bool Outbox::isOpen(uint64_t conn) {
  std::lock_guard<std::mutex> lock(mu_);
  return open_.count(conn) != 0;
}

std::deque<Outgoing> Outbox::drain() {
  // Reset the eventfd before taking the queue: a push that lands after the swap finds the
  // queue empty and writes the eventfd again, so no frame can wait for the poll timeout.
  uint64_t count;
  ssize_t ignored = ::read(wake_fd_, &count, sizeof(count));
  (void)ignored;
  std::deque<Outgoing> taken;
  std::lock_guard<std::mutex> lock(mu_);
  taken.swap(queue_);
  return taken;
}

void Outbox::clear() {
  std::lock_guard<std::mutex> lock(mu_);
  open_.clear();
  queue_.clear();
}

void Outbox::wake() {
  std::lock_guard<std::mutex> lock(mu_);
  wakeLocked();
}

void Outbox::wakeLocked() {
  uint64_t one = 1;
  ssize_t ignored = ::write(wake_fd_, &one, sizeof(one));
  (void)ignored;
}

}  // namespace corral::zmqtransport
