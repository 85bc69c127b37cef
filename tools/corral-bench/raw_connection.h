// One ZooKeeper session on its own TCP connection, for the raw driver: connecting and the
// session handshake (blocking, bounded by a deadline), then non-blocking byte I/O that a
// RawLoop drives. Not thread-safe: one thread uses a connection at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace corral::bench {

using Clock = std::chrono::steady_clock;

struct Endpoint {
  std::string host;
  std::string port;
  std::string label() const { return host + ":" + port; }
};

// "host:port,host:port" (a chroot suffix is not supported). False with *err when malformed.
bool parseServers(std::string_view list, std::vector<Endpoint>* out, std::string* err);

enum class IoResult { Done, Blocked, Closed, Failed };

class RawConnection {
 public:
  RawConnection() = default;
  ~RawConnection();
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  // Opening a session takes two calls so that many sessions can wait for their handshakes
  // at once: one after another, on a server that fsyncs every new session, they could take
  // longer than the first session's timeout.
  // Connects and sends the ConnectRequest asking for timeout_ms.
  bool startOpen(const Endpoint& endpoint, int timeout_ms, Clock::time_point deadline,
                 std::string* err);
  // Waits for the ConnectResponse. Both return false with *err (naming the endpoint) when
  // refused, rejected or not done by the deadline.
  bool finishOpen(Clock::time_point deadline, std::string* err);

  int fd() const { return fd_; }
  const Endpoint& endpoint() const { return endpoint_; }
  // What the server granted; pings go out at a third of it.
  int sessionTimeoutMs() const { return timeout_ms_; }
  // Request xids count up from 1 per session, so that replies can be checked in order.
  int32_t takeXid() { return next_xid_++; }

  // Frames to send: append, then flush().
  std::string& out() { return out_; }
  bool hasUnsent() const { return out_sent_ < out_.size(); }
  // One write of what is unsent. Done: all of it went; Blocked: the rest waits for
  // EPOLLOUT; Failed: see lastError().
  IoResult flush();

  // One read into the input buffer. Done: bytes (or none yet); Closed: the server closed
  // the connection; Failed: see lastError().
  IoResult receive();
  // The next complete frame (without its length), valid until the next receive(). False
  // when none is complete yet or the stream is malformed (a length out of range).
  bool nextFrame(std::string_view* frame);
  bool malformed() const { return malformed_; }
  const std::string& lastError() const { return error_; }

  // closeSession, then the reply or the server's close, whichever comes first, but no later
  // than the deadline; the socket is closed either way. Best effort: errors are ignored.
  void sendClose();
  void awaitClose(Clock::time_point deadline);

 private:
  bool connectSocket(Clock::time_point deadline);
  bool sendConnect(int timeout_ms, Clock::time_point deadline);
  bool readConnect(Clock::time_point deadline);
  bool waitFor(short events, Clock::time_point deadline);
  bool fail(const std::string& what);

  Endpoint endpoint_;
  int fd_ = -1;
  int timeout_ms_ = 0;
  int64_t session_id_ = 0;
  int32_t next_xid_ = 1;
  std::string out_;
  size_t out_sent_ = 0;
  std::vector<char> in_ = std::vector<char>(64 * 1024);
  size_t in_start_ = 0;
  size_t in_end_ = 0;
  bool malformed_ = false;
  std::string error_;
};

}  // namespace corral::bench
