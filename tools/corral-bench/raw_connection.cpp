#include "raw_connection.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "jute.h"
#include "zk_protocol.h"

namespace corral::bench {

bool parseServers(std::string_view list, std::vector<Endpoint>* out, std::string* err) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    size_t colon = item.rfind(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == item.size() ||
        item.find('/') != std::string_view::npos) {
      *err = "bad server '" + std::string(item) + "' (want HOST:PORT)";
      return false;
    }
    std::string_view host = item.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']')
      host = host.substr(1, host.size() - 2);
    out->push_back(Endpoint{std::string(host), std::string(item.substr(colon + 1))});
  }
  if (out->empty()) *err = "no servers given";
  return !out->empty();
}

RawConnection::~RawConnection() {
  if (fd_ >= 0) ::close(fd_);
}

bool RawConnection::fail(const std::string& what) {
  error_ = what;
  return false;
}

bool RawConnection::waitFor(short events, Clock::time_point deadline) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return fail("no answer before the deadline");
    pollfd p{fd_, events, 0};
    int n = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 1000)));
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return fail(std::strerror(errno));
  }
}

bool RawConnection::connectSocket(Clock::time_point deadline) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  int rc = ::getaddrinfo(endpoint_.host.c_str(), endpoint_.port.c_str(), &hints, &found);
  if (rc != 0) return fail(gai_strerror(rc));
  bool ok = false;
  for (addrinfo* a = found; a != nullptr && !ok; a = a->ai_next) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd_ < 0) {
      fail(std::strerror(errno));
      continue;
    }
    // Requests are batched by the loop already; Nagle would only add delay.
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (::connect(fd_, a->ai_addr, a->ai_addrlen) != 0) {
      if (errno != EINPROGRESS) {
        fail(std::strerror(errno));
        continue;
      }
      if (!waitFor(POLLOUT, deadline)) continue;
      int so_error = 0;
      socklen_t len = sizeof(so_error);
      ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &so_error, &len);
      if (so_error != 0) {
        fail(std::strerror(so_error));
        continue;
      }
    }
    ok = true;
  }
  ::freeaddrinfo(found);
  return ok;
}

bool RawConnection::sendConnect(int timeout_ms, Clock::time_point deadline) {
  zk::encodeConnect(&out_, timeout_ms);
  for (;;) {
    IoResult r = flush();
    if (r == IoResult::Done) return true;
    if (r == IoResult::Failed || !waitFor(POLLOUT, deadline)) return false;
  }
}

bool RawConnection::readConnect(Clock::time_point deadline) {
  std::string_view frame;
  while (!nextFrame(&frame)) {
    if (malformed_) return fail("no ConnectResponse: not a ZooKeeper client port?");
    if (!waitFor(POLLIN, deadline)) return false;
    IoResult r = receive();
    if (r == IoResult::Closed) return fail("the server closed the connection at the handshake");
    if (r == IoResult::Failed) return false;
  }
  JuteReader reader(frame);
  reader.int32();  // protocolVersion
  timeout_ms_ = reader.int32();
  session_id_ = reader.int64();
  reader.buffer();  // password: only needed to resume a session
  if (!reader.ok()) return fail("malformed ConnectResponse");
  if (timeout_ms_ <= 0) return fail("the server refused the session");
  return true;
}

bool RawConnection::startOpen(const Endpoint& endpoint, int timeout_ms, Clock::time_point deadline,
                              std::string* err) {
  endpoint_ = endpoint;
  bool ok = connectSocket(deadline) && sendConnect(timeout_ms, deadline);
  if (!ok) *err = endpoint_.label() + ": " + error_;
  return ok;
}

bool RawConnection::finishOpen(Clock::time_point deadline, std::string* err) {
  bool ok = readConnect(deadline);
  if (!ok) *err = endpoint_.label() + ": " + error_;
  return ok;
}

IoResult RawConnection::flush() {
  if (out_sent_ == out_.size()) return IoResult::Done;
  ssize_t n = ::send(fd_, out_.data() + out_sent_, out_.size() - out_sent_, MSG_NOSIGNAL);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return IoResult::Blocked;
    fail(std::strerror(errno));
    return IoResult::Failed;
  }
  out_sent_ += static_cast<size_t>(n);
  if (out_sent_ < out_.size()) return IoResult::Blocked;
  out_.clear();  // keeps the capacity: the next batch does not allocate
  out_sent_ = 0;
  return IoResult::Done;
}

IoResult RawConnection::receive() {
  if (in_start_ == in_end_) {
    in_start_ = in_end_ = 0;
  } else if (in_end_ == in_.size()) {
    if (in_start_ > 0) {
      std::memmove(in_.data(), in_.data() + in_start_, in_end_ - in_start_);
      in_end_ -= in_start_;
      in_start_ = 0;
    } else {
      in_.resize(in_.size() * 2);  // a frame larger than the buffer
    }
  }
  ssize_t n = ::recv(fd_, in_.data() + in_end_, in_.size() - in_end_, 0);
  if (n > 0) {
    in_end_ += static_cast<size_t>(n);
    return IoResult::Done;
  }
  if (n == 0) return IoResult::Closed;
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return IoResult::Done;
  fail(std::strerror(errno));
  return IoResult::Failed;
}

bool RawConnection::nextFrame(std::string_view* frame) {
  size_t have = in_end_ - in_start_;
  if (malformed_ || have < 4) return false;
  int32_t len = getInt32(in_.data() + in_start_);
  if (len < 0 || len > zk::kMaxFrameBytes) {
    malformed_ = true;
    fail("malformed frame length " + std::to_string(len));
    return false;
  }
  if (have < 4 + static_cast<size_t>(len)) return false;
  *frame = std::string_view(in_.data() + in_start_ + 4, static_cast<size_t>(len));
  in_start_ += 4 + static_cast<size_t>(len);
  return true;
}

void RawConnection::sendClose() {
  if (fd_ < 0) return;
  zk::encodeBare(&out_, takeXid(), zk::kCloseSession);
  flush();
}

void RawConnection::awaitClose(Clock::time_point deadline) {
  if (fd_ < 0) return;
  bool done = false;
  while (!done && flush() != IoResult::Failed) {
    if (hasUnsent()) {
      done = !waitFor(POLLOUT, deadline);
      continue;
    }
    std::string_view frame;
    while (!done && nextFrame(&frame))
      done = frame.size() < 4 || getInt32(frame.data()) != zk::kPingXid;
    if (done || malformed_ || !waitFor(POLLIN, deadline)) break;
    done = receive() != IoResult::Done;
  }
  ::close(fd_);
  fd_ = -1;
}

}  // namespace corral::bench
