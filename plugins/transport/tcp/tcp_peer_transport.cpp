#include "tcp_peer_transport.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>

#include "peer_frames.h"

namespace corral::tcptransport {

namespace {
constexpr uint64_t kListenSerial = 0;
constexpr uint64_t kWakeSerial = 1;
// Outgoing connections' serials: top bit set, the peer's index in bits 40..62.
constexpr uint64_t kOutBit = 1ull << 63;
constexpr size_t kReadChunk = 64 * 1024;
constexpr int kReadsPerTurn = 64;  // then other sockets get their turn
constexpr int kMaxEvents = 64;
constexpr size_t kMaxUnidentified = 64;  // connections that have not said hello yet
constexpr std::chrono::seconds kHelloTimeout{5};
constexpr std::chrono::milliseconds kPollCap{1000};
constexpr std::chrono::seconds kStrangerWarningInterval{1};
constexpr uint64_t kMinBacklogBytes = 1ull << 30;
constexpr size_t kMaxRetiredIncarnations = 8;

uint64_t newIncarnation() {
  std::random_device rd;
  uint64_t r = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  r ^= static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
  return r != 0 ? r : 1;
}

std::string errnoText(int e) {
  return std::strerror(e);
}

void setNoDelay(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

// Resolves a peer address (numeric, or a name from the resolver) for connect/bind.
bool resolve(const PeerAddress& a, bool passive, sockaddr_storage* out, socklen_t* len,
             std::string* why) {
  addrinfo hints{};
  hints.ai_family = a.ipv6 ? AF_INET6 : AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  const char* host = a.host == "*" ? nullptr : a.host.c_str();
  addrinfo* res = nullptr;
  std::string port = std::to_string(a.port);
  int rc = ::getaddrinfo(host, port.c_str(), &hints, &res);
  if (rc != 0 || res == nullptr) {
    *why = std::string("cannot resolve: ") + ::gai_strerror(rc);
    return false;
  }
  std::memcpy(out, res->ai_addr, res->ai_addrlen);
  *len = res->ai_addrlen;
  ::freeaddrinfo(res);
  return true;
}
}  // namespace

TcpPeerTransport::TcpPeerTransport(PeerSettings settings, const corral_host_api* host)
    : settings_(std::move(settings)), host_(host), incarnation_(newIncarnation()) {
  link_ = std::make_unique<std::atomic<uint64_t>[]>(settings_.peers.size());
  for (size_t i = 0; i < settings_.peers.size(); ++i) {
    auto p = std::make_unique<Peer>();
    p->index = i;
    p->id = settings_.peers[i].id;
    p->address = settings_.peers[i].address;
    index_.emplace(p->id, i);
    peers_.push_back(std::move(p));
    link_[i].store(0);
  }
  ping_fds_.assign(peers_.size(), -1);
}

TcpPeerTransport::~TcpPeerTransport() {
  stop();
  closeAll();
}

void TcpPeerTransport::closeAll() noexcept {
  {
    std::lock_guard<std::mutex> lock(ping_mu_);
    ping_fds_.assign(peers_.size(), -1);
  }
  for (auto& p : peers_) closeConn(p->out);
  for (auto& [serial, in] : incoming_) closeConn(in.conn);
  incoming_.clear();
  for (int* fd : {&listen_fd_, &wake_fd_, &epoll_fd_}) {
    if (*fd >= 0) ::close(*fd);
    *fd = -1;
  }
}

PeerCode TcpPeerTransport::start(PeerSink* sink, ErrorBuf err) noexcept {
  if (sink == nullptr || running_ || io_thread_.joinable() || sink_ != nullptr) {
    err.write("tcp peer transport: start() needs a sink and may be called once");
    return PeerCode::kInvalidArgument;
  }
  sink_ = sink;
  const std::string listen = settings_.listen.text();
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epoll_fd_ < 0 || wake_fd_ < 0) {
    err.write("tcp peer transport: cannot create epoll/eventfd: " + errnoText(errno));
    closeAll();
    return PeerCode::kIoError;
  }
  sockaddr_storage addr{};
  socklen_t len = 0;
  std::string why;
  if (!resolve(settings_.listen, true, &addr, &len, &why)) {
    err.write("tcp peer transport: cannot listen on " + listen + ": " + why);
    closeAll();
    return PeerCode::kIoError;
  }
  listen_fd_ = ::socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  if (listen_fd_ < 0 ||
      ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
      ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      ::listen(listen_fd_, 64) != 0) {
    err.write("tcp peer transport: cannot listen on " + listen + ": " + errnoText(errno));
    closeAll();
    return PeerCode::kIoError;
  }
  watch(listen_fd_, kListenSerial, EPOLLIN);
  watch(wake_fd_, kWakeSerial, EPOLLIN);
  std::string members;
  for (auto& p : peers_)
    members += (members.empty() ? "" : ", ") + std::to_string(p->id) + "=" + p->address.text();
  log(CORRAL_LOG_INFO, "server " + std::to_string(settings_.self_id) + " listening on " + listen +
                           "; peers [" + members +
                           "]; reconnect_ms = " + std::to_string(settings_.reconnect_ms) +
                           ", heartbeat_ms = " + std::to_string(settings_.heartbeat_ms) +
                           ", max_message_bytes = " + std::to_string(settings_.max_message_bytes));
  running_ = true;
  try {
    if (settings_.heartbeat_ms > 0) {
      pinging_ = true;
      pinger_ = std::thread([this] { pingLoop(); });
    }
    io_thread_ = std::thread([this] { run(); });
  } catch (const std::exception& e) {
    running_ = false;
    stopPinger();
    closeAll();
    err.write(std::string("tcp peer transport: cannot start the I/O thread: ") + e.what());
    return PeerCode::kIoError;
  }
  return PeerCode::kOk;
}

void TcpPeerTransport::stopPinger() noexcept {
  {
    std::lock_guard<std::mutex> lock(ping_mu_);
    pinging_ = false;
  }
  ping_cv_.notify_all();
  if (pinger_.joinable()) pinger_.join();
}

void TcpPeerTransport::stop() noexcept {
  stopPinger();
  if (!io_thread_.joinable()) return;
  running_ = false;
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof(one));
  io_thread_.join();  // the I/O thread reports every link down and closes its sockets
}

PeerCode TcpPeerTransport::send(uint64_t peer_id, ByteView message) noexcept {
  auto it = index_.find(peer_id);
  if (it == index_.end()) return PeerCode::kUnknownPeer;
  if (message.size > settings_.max_message_bytes || (message.data == nullptr && message.size > 0))
    return PeerCode::kInvalidArgument;
  Peer& p = *peers_[it->second];
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(p.mu);
    // Read under the lock: the I/O thread changes the generation (and empties the queue)
    // under it, so nothing queued here can reach the peer on a later link.
    if ((link_[p.index].load(std::memory_order_relaxed) & 1) == 0 || p.overflow)
      return PeerCode::kNotConnected;
    const uint64_t max_bytes = std::max(kMinBacklogBytes, 4 * settings_.max_message_bytes);
    try {
      if (p.queued.size() + kFrameHeader + message.size > max_bytes) throw std::bad_alloc();
      wake = p.queued.empty();
      appendFrame(p.queued, FrameKind::kData, message.data, message.size);
    } catch (...) {
      // The peer is not reading (or memory ran out): this message is lost, so no later one
      // may arrive; the I/O thread takes the link down.
      p.overflow = true;
      wake = true;
    }
  }
  if (wake && !wake_pending_.exchange(true, std::memory_order_acq_rel)) {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof(one));
  }
  return PeerCode::kOk;
}

void TcpPeerTransport::run() noexcept {
  try {
    loop();
  } catch (const std::exception& e) {
    log(CORRAL_LOG_ERROR, std::string("I/O thread failed: ") + e.what());
  } catch (...) {
    log(CORRAL_LOG_ERROR, "I/O thread failed");
  }
  for (auto& p : peers_) linkDown(*p, running_ ? "the transport failed" : "transport stopped");
  closeAll();
}

void TcpPeerTransport::loop() {
  epoll_event events[kMaxEvents];
  Clock::time_point now = Clock::now();
  for (auto& p : peers_) startConnect(*p, now);
  while (running_) {
    now = Clock::now();
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(nextDeadline(now) - now);
    int timeout =
        static_cast<int>(std::clamp(wait, std::chrono::milliseconds(0), kPollCap).count());
    int n = ::epoll_wait(epoll_fd_, events, kMaxEvents, timeout);
    if (n < 0 && errno != EINTR) throw std::runtime_error("epoll_wait: " + errnoText(errno));
    if (!running_) break;
    for (int i = 0; i < n; ++i) {
      const uint64_t serial = events[i].data.u64;
      const uint32_t ev = events[i].events;
      if (serial == kListenSerial) {
        acceptReady();
      } else if (serial == kWakeSerial) {
        uint64_t count = 0;
        [[maybe_unused]] ssize_t r = ::read(wake_fd_, &count, sizeof(count));
        // Cleared before the queues are taken: a send() after this point wakes us again.
        wake_pending_.store(false, std::memory_order_release);
        for (auto& p : peers_) flushPeer(*p);
      } else if (serial & kOutBit) {
        Peer& p = *peers_[(serial & ~kOutBit) >> 40];
        if (p.out.serial != serial || p.out.fd < 0) continue;  // closed earlier this turn
        if (p.connecting) {
          onConnectDone(p);
          continue;
        }
        if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) onOutReadable(p);
        if (p.out.fd >= 0 && p.out.serial == serial && (ev & EPOLLOUT)) flushPeer(p);
      } else {
        auto it = incoming_.find(serial);
        if (it == incoming_.end()) continue;
        if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) onInReadable(it->second);
      }
    }
    runTimers(Clock::now());
  }
}

TcpPeerTransport::Clock::time_point TcpPeerTransport::nextDeadline(Clock::time_point now) const {
  Clock::time_point next = now + kPollCap;
  const auto beat = std::chrono::milliseconds(settings_.heartbeat_ms);
  for (const auto& p : peers_) {
    if (p->out.fd < 0) next = std::min(next, p->reconnect_at);
    if (p->connecting) next = std::min(next, p->connect_deadline);
    if (p->out_ready && beat.count() > 0) next = std::min(next, p->last_heard + 3 * beat);
  }
  for (const auto& [serial, in] : incoming_)
    if (in.peer == SIZE_MAX) next = std::min(next, in.deadline);
  return next;
}

void TcpPeerTransport::runTimers(Clock::time_point now) {
  const auto beat = std::chrono::milliseconds(settings_.heartbeat_ms);
  for (auto& pp : peers_) {
    Peer& p = *pp;
    if (p.out.fd < 0 && now >= p.reconnect_at) startConnect(p, now);
    if (p.connecting && now >= p.connect_deadline) {
      log(CORRAL_LOG_DEBUG, describe(p) + ": connect timed out");
      breakOut(p, "connect timed out", false);
    }
    // Pings may be waiting unread when this thread itself was held up (a slow sink call):
    // read them before judging.
    if (p.out_ready && beat.count() > 0 && now - p.last_heard > 3 * beat) onOutReadable(p);
    if (p.out_ready && beat.count() > 0 && now - p.last_heard > 3 * beat) {
      breakOut(p,
               "no word for " +
                   std::to_string(
                       std::chrono::duration_cast<std::chrono::milliseconds>(now - p.last_heard)
                           .count()) +
                   " ms",
               true);
    }
  }
  std::vector<uint64_t> expired;
  for (const auto& [serial, in] : incoming_)
    if (in.peer == SIZE_MAX && now >= in.deadline) expired.push_back(serial);
  for (uint64_t serial : expired) {
    warnStranger("a connection said no hello within " + std::to_string(kHelloTimeout.count()) +
                 " s; closed");
    closeIncoming(serial, "");
  }
}

// --- outgoing connections ---

void TcpPeerTransport::startConnect(Peer& p, Clock::time_point now) {
  p.reconnect_at = now + std::chrono::milliseconds(settings_.reconnect_ms);
  sockaddr_storage addr{};
  socklen_t len = 0;
  std::string why;
  if (!resolve(p.address, false, &addr, &len, &why)) {
    log(CORRAL_LOG_WARN, describe(p) + ": " + why);
    return;
  }
  int fd = ::socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    log(CORRAL_LOG_WARN, describe(p) + ": socket: " + errnoText(errno));
    return;
  }
  setNoDelay(fd);
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), len);
  if (rc != 0 && errno != EINPROGRESS) {
    log(CORRAL_LOG_DEBUG, describe(p) + ": connect: " + errnoText(errno));
    ::close(fd);
    return;
  }
  p.out = Conn();
  p.out.fd = fd;
  p.out.serial =
      kOutBit | (static_cast<uint64_t>(p.index) << 40) | (++out_counter_ & ((1ull << 40) - 1));
  p.connecting = true;
  p.connect_deadline =
      now + std::chrono::milliseconds(std::max<int64_t>(1000, 3 * settings_.heartbeat_ms));
  watch(fd, p.out.serial, EPOLLOUT);
  p.out.want_write = true;
}

void TcpPeerTransport::onConnectDone(Peer& p) {
  int error = 0;
  socklen_t len = sizeof(error);
  if (::getsockopt(p.out.fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0) error = errno;
  if (error != 0) {
    log(CORRAL_LOG_DEBUG, describe(p) + ": connect: " + errnoText(error));
    breakOut(p, "connect failed", false);
    return;
  }
  p.connecting = false;
  armWrite(p.out, false);
  ++p.out_connections;
  p.out_ready = true;
  p.last_heard = Clock::now();
  log(CORRAL_LOG_DEBUG,
      describe(p) + ": connected (connection " + std::to_string(p.out_connections) + ")");
  {
    std::lock_guard<std::mutex> lock(p.mu);
    p.queued.clear();  // the link is down: nothing of an older link may follow the hello
  }
  queueHello(p, true);
  linkUpIfReady(p);
}

void TcpPeerTransport::onOutReadable(Peer& p) {
  // Only pings come back on our connection; anything else is a protocol error.
  Conn& c = p.out;
  for (int i = 0; i < kReadsPerTurn; ++i) {
    char buf[4096];
    ssize_t n = ::recv(c.fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n > 0) {
      p.last_heard = Clock::now();
      c.in.append(buf, static_cast<size_t>(n));
      while (c.in.size() >= kFrameHeader) {
        const auto* b = reinterpret_cast<const uint8_t*>(c.in.data());
        if (get32(b) != 1 || b[4] != static_cast<uint8_t>(FrameKind::kPing)) {
          breakOut(p, "unexpected frame from the peer", true);
          return;
        }
        c.in.erase(0, kFrameHeader);
      }
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    breakOut(p, n == 0 ? "connection closed by the peer" : "connection lost: " + errnoText(errno),
             false);
    return;
  }
}

void TcpPeerTransport::breakOut(Peer& p, const std::string& why, bool warn) {
  if (warn) log(CORRAL_LOG_WARN, describe(p) + ": " + why + "; reconnecting");
  closeConn(p.out);
  p.connecting = false;
  p.out_ready = false;
  // Whatever P sent us may also be lost: wait for a fresh hello before the link is up again.
  p.in_fresh = false;
  p.reconnect_at = Clock::now() + std::chrono::milliseconds(settings_.reconnect_ms);
  linkDown(p, why);
}

void TcpPeerTransport::queueHello(Peer& p, bool ask_reply) {
  Hello h;
  h.sender = settings_.self_id;
  h.incarnation = incarnation_;
  h.connection = p.out_connections;
  h.target = p.id;
  h.flags = ask_reply ? kAskReply : 0;
  {
    std::lock_guard<std::mutex> lock(p.mu);
    appendHello(p.queued, h);
  }
  flushPeer(p);
}

// Writes what the kernel queued for P; keeps EPOLLOUT armed while the socket is full.
void TcpPeerTransport::flushPeer(Peer& p) {
  bool overflow = false;
  {
    std::lock_guard<std::mutex> lock(p.mu);
    overflow = p.overflow;
  }
  if (overflow) {
    uint64_t queued = 0;
    {
      std::lock_guard<std::mutex> lock(p.mu);
      queued = p.queued.size();
    }
    breakOut(p, "peer is not reading (" + std::to_string(queued) + " bytes queued)", true);
    return;
  }
  if (p.out.fd < 0 || p.connecting) return;
  for (int round = 0; round < 2; ++round) {
    if (p.out.out.empty()) {
      std::lock_guard<std::mutex> lock(p.mu);
      p.out.out.swap(p.queued);  // the buffers trade places: no allocation in steady state
      p.out.out_done = 0;
    }
    if (p.out.out.empty()) break;
    if (!writeSome(p.out)) {
      breakOut(p, "connection lost: " + errnoText(errno), false);
      return;
    }
    if (!p.out.out.empty()) break;  // the socket is full
  }
  armWrite(p.out, !p.out.out.empty());
}

// --- incoming connections ---

void TcpPeerTransport::acceptReady() {
  for (int i = 0; i < 64; ++i) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        warnStranger("accept failed: " + errnoText(errno));
      return;
    }
    size_t unidentified = 0;
    for (const auto& [serial, in] : incoming_) unidentified += in.peer == SIZE_MAX;
    if (unidentified >= kMaxUnidentified) {
      warnStranger("too many connections that have not said hello; one closed");
      ::close(fd);
      continue;
    }
    setNoDelay(fd);
    uint64_t serial = next_serial_++;
    Incoming& in = incoming_[serial];
    in.conn.fd = fd;
    in.conn.serial = serial;
    in.deadline = Clock::now() + kHelloTimeout;
    watch(fd, serial, EPOLLIN);
  }
}

void TcpPeerTransport::onInReadable(Incoming& in) {
  const uint64_t serial = in.conn.serial;
  Conn& c = in.conn;
  const size_t max_frame = 1 + std::max<size_t>(settings_.max_message_bytes, kHelloBody);
  for (int i = 0; i < kReadsPerTurn; ++i) {
    // Room for a whole frame once its header is known (headers were checked when parsed).
    size_t room = kReadChunk;
    if (c.in_end - c.in_begin >= kFrameHeader) {
      size_t frame = 4 + size_t{get32(reinterpret_cast<const uint8_t*>(c.in.data()) + c.in_begin)};
      room = std::max(room, frame - (c.in_end - c.in_begin));
    }
    if (c.in.size() - c.in_end < room) {
      if (c.in_begin > 0) {  // move the unparsed tail to the front
        std::memmove(c.in.data(), c.in.data() + c.in_begin, c.in_end - c.in_begin);
        c.in_end -= c.in_begin;
        c.in_begin = 0;
      }
      if (c.in.size() - c.in_end < room) c.in.resize(c.in_end + room);
    }
    ssize_t n = ::recv(c.fd, c.in.data() + c.in_end, c.in.size() - c.in_end, MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;  // drained
    if (n <= 0) {
      closeIncoming(serial, n == 0 ? "closed by the peer" : "lost: " + errnoText(errno));
      return;
    }
    c.in_end += static_cast<size_t>(n);
    // Every whole frame read so far.
    while (c.in_end - c.in_begin >= kFrameHeader) {
      const auto* b = reinterpret_cast<const uint8_t*>(c.in.data()) + c.in_begin;
      uint32_t len = get32(b);
      if (len == 0 || len > max_frame) {
        warnStranger("frame of " + std::to_string(len) + " bytes (at most " +
                     std::to_string(max_frame) + "); connection closed");
        closeIncoming(serial, "bad frame");
        return;
      }
      if (c.in_end - c.in_begin < 4 + size_t{len}) break;
      if (!handleInFrame(in, b[4], b + kFrameHeader, len - 1)) {
        closeIncoming(serial, "");
        return;
      }
      c.in_begin += 4 + size_t{len};
    }
    if (c.in_begin == c.in_end) c.in_begin = c.in_end = 0;
    // A large buffer left by a large frame is given back once it is empty.
    if (c.in_end == 0 && c.in.size() > 4 * kReadChunk) std::string().swap(c.in);
  }
}

// False: the connection must be closed.
bool TcpPeerTransport::handleInFrame(Incoming& in, uint8_t kind, const uint8_t* body, size_t size) {
  switch (static_cast<FrameKind>(kind)) {
    case FrameKind::kHello:
      return handleHello(in, body, size);
    case FrameKind::kPing:
      return true;
    case FrameKind::kData: {
      if (in.peer == SIZE_MAX) {
        warnStranger("data from a connection that did not say hello; closed");
        return false;
      }
      Peer& p = *peers_[in.peer];
      if (!p.up) {
        ++p.dropped;  // sent on a link that broke: the sender learns it from its own down
        return true;
      }
      sink_->onMessage(p.id, ByteView(body, size));
      return true;
    }
  }
  warnStranger("frame of unknown kind " + std::to_string(kind) + "; connection closed");
  return false;
}

bool TcpPeerTransport::handleHello(Incoming& in, const uint8_t* body, size_t size) {
  Hello h;
  if (!parseHello(body, size, &h)) {
    warnStranger("hello of another protocol or version (" + std::to_string(size) +
                 " bytes); connection closed");
    return false;
  }
  auto member = index_.find(h.sender);
  if (member == index_.end()) {
    warnStranger("hello from server " + std::to_string(h.sender) +
                 ", which is not among the peers; connection closed");
    return false;
  }
  if (h.target != settings_.self_id) {
    warnStranger("hello from server " + std::to_string(h.sender) +
                 ", which meant to reach server " + std::to_string(h.target) +
                 " (check the ensemble addresses); connection closed");
    return false;
  }
  Peer& p = *peers_[member->second];
  if (in.peer != SIZE_MAX) {
    // The answer to our hello on a connection we know.
    if (in.peer != p.index || h.incarnation != p.in_incarnation ||
        h.connection != p.in_connection) {
      log(CORRAL_LOG_WARN, describe(p) + ": hello changed identity on a connection; closed");
      return false;
    }
  } else {
    // A new connection from P. The hello of an older connection (or an older process) read
    // after a newer one is stale: its connection is on its way out.
    if (std::find(p.retired.begin(), p.retired.end(), h.incarnation) != p.retired.end() ||
        (p.in_known && h.incarnation == p.in_incarnation && h.connection <= p.in_connection)) {
      log(CORRAL_LOG_DEBUG, describe(p) + ": hello of a replaced connection; closed");
      return false;
    }
    std::string why = "peer reconnected";
    if (p.in_known && h.incarnation != p.in_incarnation) {
      why = "peer restarted";
      p.retired.push_back(p.in_incarnation);
      if (p.retired.size() > kMaxRetiredIncarnations) p.retired.pop_front();
    }
    uint64_t previous = p.in_serial;
    p.in_serial = 0;
    if (previous != 0) closeIncoming(previous, "");  // a different entry: `in` stays valid
    linkDown(p, why);  // what P sent on its previous connection may be lost
    p.in_known = true;
    p.in_serial = in.conn.serial;
    p.in_incarnation = h.incarnation;
    p.in_connection = h.connection;
    in.peer = p.index;
    setPingFd(p.index, in.conn.fd);
  }
  p.in_fresh = true;
  // P waits for a hello from us after its (re)connect; when our connection is not up yet,
  // the hello that starts it serves.
  if ((h.flags & kAskReply) != 0 && p.out_ready) queueHello(p, false);
  linkUpIfReady(p);
  return true;
}

void TcpPeerTransport::closeIncoming(uint64_t serial, const std::string& why) {
  auto it = incoming_.find(serial);
  if (it == incoming_.end()) return;
  size_t peer = it->second.peer;
  if (peer != SIZE_MAX) setPingFd(peer, -1, it->second.conn.fd);
  closeConn(it->second.conn);
  incoming_.erase(it);
  if (peer == SIZE_MAX) return;
  Peer& p = *peers_[peer];
  if (p.in_serial != serial) return;
  // P's connection broke: what it sent may be lost. It reconnects and says hello again.
  p.in_serial = 0;
  p.in_fresh = false;
  linkDown(p, "peer's connection " + (why.empty() ? std::string("closed") : why));
}

// Every heartbeat, a ping on each peer's current connection to us: the peer judges our
// liveness by them (the only bytes sent that way). A ping that does not fit whole means the
// peer stopped reading long ago; the connection is ended (the I/O thread sees it closed).
void TcpPeerTransport::pingLoop() noexcept {
  std::string ping;
  appendFrame(ping, FrameKind::kPing, nullptr, 0);
  std::unique_lock<std::mutex> lock(ping_mu_);
  while (pinging_) {
    for (int fd : ping_fds_) {
      if (fd < 0) continue;
      ssize_t n = ::send(fd, ping.data(), ping.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0 && static_cast<size_t>(n) < ping.size()) ::shutdown(fd, SHUT_RDWR);
    }
    ping_cv_.wait_for(lock, std::chrono::milliseconds(settings_.heartbeat_ms));
  }
}

void TcpPeerTransport::setPingFd(size_t peer, int fd, int only_if) {
  std::lock_guard<std::mutex> lock(ping_mu_);
  if (only_if < 0 || ping_fds_[peer] == only_if) ping_fds_[peer] = fd;
}

// --- sockets ---

bool TcpPeerTransport::writeSome(Conn& c) {
  while (c.out_done < c.out.size()) {
    ssize_t n = ::send(c.fd, c.out.data() + c.out_done, c.out.size() - c.out_done,
                       MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      c.out_done += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    return false;
  }
  c.out.clear();
  c.out_done = 0;
  return true;
}

void TcpPeerTransport::armWrite(Conn& c, bool on) {
  if (c.fd < 0 || c.want_write == on) return;
  c.want_write = on;
  epoll_event ev{};
  ev.events = on ? uint32_t{EPOLLIN | EPOLLOUT} : uint32_t{EPOLLIN};
  ev.data.u64 = c.serial;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &ev);
}

void TcpPeerTransport::watch(int fd, uint64_t serial, uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = serial;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0)
    throw std::runtime_error("epoll_ctl: " + errnoText(errno));
}

void TcpPeerTransport::closeConn(Conn& c) {
  if (c.fd >= 0) ::close(c.fd);  // also leaves the epoll set
  c.fd = -1;
  c.in.clear();
  c.in_begin = c.in_end = 0;
  c.out.clear();
  c.out_done = 0;
  c.want_write = false;
}

// --- links ---

void TcpPeerTransport::linkUpIfReady(Peer& p) {
  if (p.up || !p.out_ready || !p.in_fresh) return;
  p.up = true;
  {
    std::lock_guard<std::mutex> lock(p.mu);
    link_[p.index].fetch_add(1, std::memory_order_acq_rel);  // odd: up
  }
  log(CORRAL_LOG_INFO,
      describe(p) + ": link up" +
          (p.dropped > 0 ? " (" + std::to_string(p.dropped) + " messages dropped while down)"
                         : std::string()));
  p.dropped = 0;
  sink_->onPeerUp(p.id);
}

void TcpPeerTransport::linkDown(Peer& p, const std::string& why) {
  if (!p.up) return;
  p.up = false;
  {
    // Even: down. From here send() refuses, and what it queued is dropped.
    std::lock_guard<std::mutex> lock(p.mu);
    link_[p.index].fetch_add(1, std::memory_order_acq_rel);
    p.queued.clear();
    p.overflow = false;
  }
  log(CORRAL_LOG_INFO, describe(p) + ": link down (" + why + ")");
  sink_->onPeerDown(p.id);
}

void TcpPeerTransport::warnStranger(const std::string& msg) {
  // Rate-limited: a stray client must not flood the server's log.
  Clock::time_point now = Clock::now();
  if (now - last_stranger_warning_ < kStrangerWarningInterval) {
    ++strangers_suppressed_;
    return;
  }
  std::string suffix = strangers_suppressed_ > 0 ? " (" + std::to_string(strangers_suppressed_) +
                                                       " similar messages suppressed)"
                                                 : std::string();
  last_stranger_warning_ = now;
  strangers_suppressed_ = 0;
  log(CORRAL_LOG_WARN, "on " + settings_.listen.text() + ": " + msg + suffix);
}

std::string TcpPeerTransport::describe(const Peer& p) const {
  return "peer " + std::to_string(p.id) + " (" + p.address.text() + ")";
}

void TcpPeerTransport::log(corral_log_level level, const std::string& msg) noexcept {
  try {
    hostLog(host_, level, "tcp", "peer transport: " + msg);
  } catch (...) {
  }
}

}  // namespace corral::tcptransport
