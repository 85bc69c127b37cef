#include "raw_loop.h"

#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "zk_protocol.h"

namespace corral::bench {
namespace {

constexpr int kMaxEvents = 64;
// How long epoll may sleep: bounds how late a ping or the end of the phase is noticed.
constexpr auto kMaxWait = std::chrono::milliseconds(50);

int waitMs(Clock::time_point now, Clock::time_point until) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - now);
  return static_cast<int>(std::clamp<int64_t>(left.count() + 1, 0, kMaxWait.count()));
}

}  // namespace

RawLoop::RawLoop() : epoll_fd_(epoll_create1(EPOLL_CLOEXEC)) {}

RawLoop::~RawLoop() {
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
}

void RawLoop::add(RawConnection* conn, int index) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u32 = static_cast<uint32_t>(slots_.size());
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, conn->fd(), &ev);
  Slot& s = slots_.emplace_back();
  s.conn = conn;
  s.index = index;
  s.last_send = Clock::now();  // the handshake, near enough
}

bool RawLoop::fail(const Slot& s, const std::string& what, std::string* err) const {
  *err = "session " + std::to_string(s.index) + " (" + s.conn->endpoint().label() + "): " + what;
  return false;
}

void RawLoop::refill(Slot& s, Plan& plan, int window) {
  if (s.outstanding >= window) return;
  std::string& out = s.conn->out();
  Clock::time_point now = Clock::now();
  while (s.outstanding < window) {
    size_t frame = out.size();
    if (!plan.next(s.index, &out)) {
      s.exhausted = true;
      break;
    }
    int32_t xid = s.conn->takeXid();
    putInt32(out.data() + frame + zk::kXidOffset, xid);
    s.ring[(s.head + static_cast<size_t>(s.outstanding)) % s.ring.size()] = Sent{now, xid};
    ++s.outstanding;
    s.last_send = now;
  }
}

void RawLoop::pingIfIdle(Slot& s, Clock::time_point now) {
  auto every = std::chrono::milliseconds(std::max(s.conn->sessionTimeoutMs() / 3, 1));
  if (s.outstanding > 0 || now - s.last_send < every) return;
  zk::encodeBare(&s.conn->out(), zk::kPingXid, zk::kPing);
  s.last_send = now;
}

bool RawLoop::flush(Slot& s, std::string* err) {
  IoResult r = s.conn->flush();
  if (r == IoResult::Failed) return fail(s, s.conn->lastError(), err);
  bool want_write = r == IoResult::Blocked;
  if (want_write != s.want_write) {
    epoll_event ev{};
    ev.events = want_write ? EPOLLIN | EPOLLOUT : EPOLLIN;
    ev.data.u32 = static_cast<uint32_t>(&s - slots_.data());
    epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, s.conn->fd(), &ev);
    s.want_write = want_write;
  }
  return true;
}

bool RawLoop::receive(Slot& s, Plan& plan, std::vector<uint32_t>* latencies, std::string* err) {
  IoResult r = s.conn->receive();
  Clock::time_point now = Clock::now();
  std::string_view frame;
  while (s.conn->nextFrame(&frame)) {
    JuteReader body(frame);
    zk::ReplyHeader h{body.int32(), body.int64(), body.int32()};
    if (!body.ok()) return fail(s, "reply shorter than its header", err);
    if (h.xid == zk::kPingXid || h.xid == zk::kNotificationXid) continue;
    if (s.outstanding == 0) return fail(s, "reply xid " + std::to_string(h.xid) + " unasked", err);
    const Sent& sent = s.ring[s.head];
    if (h.xid != sent.xid)
      return fail(
          s, "reply xid " + std::to_string(h.xid) + ", expected " + std::to_string(sent.xid), err);
    if (latencies != nullptr)
      latencies->push_back(static_cast<uint32_t>(
          std::chrono::duration_cast<std::chrono::microseconds>(now - sent.at).count()));
    s.head = (s.head + 1) % s.ring.size();
    --s.outstanding;
    plan.reply(s.index, h.err, body);
  }
  if (s.conn->malformed()) return fail(s, s.conn->lastError(), err);
  if (r == IoResult::Closed) return fail(s, "the server closed the connection", err);
  if (r == IoResult::Failed) return fail(s, s.conn->lastError(), err);
  return true;
}

bool RawLoop::run(Plan& plan, const Phase& phase, std::string* err) {
  int window = std::max(phase.window, 1);
  for (Slot& s : slots_) {
    s.ring.assign(static_cast<size_t>(window), Sent{});
    s.head = 0;
    s.outstanding = 0;
    s.exhausted = false;
  }
  epoll_event events[kMaxEvents];
  bool stopping = false;
  for (;;) {
    Clock::time_point now = Clock::now();
    stopping = stopping || now >= phase.stop_at;
    bool active = false;
    for (Slot& s : slots_) {
      if (!stopping && !s.exhausted) refill(s, plan, window);
      pingIfIdle(s, now);
      if (!flush(s, err)) return false;
      active = active || s.outstanding > 0 || (!stopping && !s.exhausted);
    }
    if (!active) return true;
    if (stopping && now >= phase.give_up) {
      for (const Slot& s : slots_)
        if (s.outstanding > 0)
          return fail(s, std::to_string(s.outstanding) + " requests unanswered", err);
    }
    int n = epoll_wait(epoll_fd_, events, kMaxEvents,
                       waitMs(now, stopping ? phase.give_up : phase.stop_at));
    if (n < 0 && errno != EINTR) {
      *err = std::string("epoll_wait: ") + std::strerror(errno);
      return false;
    }
    for (int i = 0; i < n; ++i) {
      Slot& s = slots_[events[i].data.u32];
      if ((events[i].events & EPOLLOUT) && !flush(s, err)) return false;
      if ((events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) &&
          !receive(s, plan, phase.latencies_us, err))
        return false;
    }
  }
}

}  // namespace corral::bench
