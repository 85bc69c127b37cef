// A thread-safe ClientSink that records every call so a test can wait for conditions
// (with deadlines) instead of sleeping.
#pragma once

#include <corral/client_transport.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace corral::testing {

struct SinkEvent {
  enum class Kind { kOpen, kFrame, kClose };
  Kind kind;
  uint64_t conn;
  std::string bytes;  // remote address for kOpen, the frame for kFrame
};

class RecordingSink final : public ClientSink {
 public:
  void onOpen(uint64_t conn, ByteView remote) noexcept override {
    add({SinkEvent::Kind::kOpen, conn, std::string(remote.str())});
  }
  void onFrame(uint64_t conn, ByteView frame) noexcept override {
    add({SinkEvent::Kind::kFrame, conn, std::string(frame.str())});
  }
  void onClose(uint64_t conn) noexcept override { add({SinkEvent::Kind::kClose, conn, {}}); }

  std::vector<SinkEvent> events() {
    std::lock_guard<std::mutex> lock(mu_);
    return events_;
  }

  // Waits until pred(events) holds; false when the deadline passes first.
  bool waitFor(const std::function<bool(const std::vector<SinkEvent>&)>& pred,
               std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return pred(events_); });
  }

  // Convenience predicates over the recorded events.
  static size_t count(const std::vector<SinkEvent>& ev, SinkEvent::Kind kind) {
    size_t n = 0;
    for (const SinkEvent& e : ev) n += e.kind == kind;
    return n;
  }
  static std::vector<std::string> framesOf(const std::vector<SinkEvent>& ev, uint64_t conn) {
    std::vector<std::string> out;
    for (const SinkEvent& e : ev)
      if (e.kind == SinkEvent::Kind::kFrame && e.conn == conn) out.push_back(e.bytes);
    return out;
  }
  static bool closed(const std::vector<SinkEvent>& ev, uint64_t conn) {
    for (const SinkEvent& e : ev)
      if (e.kind == SinkEvent::Kind::kClose && e.conn == conn) return true;
    return false;
  }
  // The conn id of the n-th onOpen (0-based), or 0.
  static uint64_t openedConn(const std::vector<SinkEvent>& ev, size_t n) {
    for (const SinkEvent& e : ev)
      if (e.kind == SinkEvent::Kind::kOpen && n-- == 0) return e.conn;
    return 0;
  }

 private:
  void add(SinkEvent e) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      events_.push_back(std::move(e));
    }
    cv_.notify_all();
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<SinkEvent> events_;
};

}  // namespace corral::testing
