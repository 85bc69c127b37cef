#include "zmq_peer_transport.h"

#include "recv_message.h"

#include <algorithm>
#include <cstring>
#include <random>

namespace corral::zmqtransport {

namespace {
// The first part of a hello; data messages are a single part, so they can never match.
constexpr std::string_view kHelloMagic = "corral-peer-hello/1";
// sender id, sender incarnation, connection number, target id (u64 each), flags (u32),
// reserved (u32); little-endian.
constexpr size_t kHelloSize = 40;
constexpr uint32_t kAskReply = 1;  // the sender opened a new connection: answer with a hello

// Messages libzmq may hold per connection before it pushes back (the DEALER then refuses
// sends and they wait in the peer's backlog) or stops reading the socket (ROUTER).
constexpr int kSendHwm = 10'000;
constexpr int kRecvHwm = 10'000;
// A peer that leaves this much unread is reconnected (its link goes down) rather than
// buffered without bound.
constexpr size_t kMaxBacklogMessages = 1'000'000;
constexpr uint64_t kMinBacklogBytes = 1ull << 30;
constexpr size_t kMaxRetiredIncarnations = 8;
constexpr size_t kMaxRetiredRoutingIds = 1024;
constexpr std::chrono::milliseconds kPollCap{1000};
constexpr std::chrono::seconds kStrangerWarningInterval{1};

void put64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint64_t get64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

uint64_t newIncarnation() {
  std::random_device rd;
  uint64_t r = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  r ^= static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
  return r != 0 ? r : 1;
}

bool isMagic(const zmq::message_t& m) {
  return m.size() == kHelloMagic.size() &&
         std::memcmp(m.data(), kHelloMagic.data(), kHelloMagic.size()) == 0;
}

// ZMTP heartbeats, set so that only a silent peer breaks a link, never a busy one. libzmq
// cancels a heartbeat timeout only when a whole message arrives, and a PING travels behind
// the data queued before it. So the side that judges must be the DEALER, whose connection
// carries our data one way and nothing but the peer ROUTER's PINGs (and PONGs) the other
// way: those are never stuck behind a large message, nor held back when the peer's kernel
// reads slowly (libzmq keeps sending PINGs while it stops reading). The DEALER gives up
// 3 intervals after its own unanswered PING, or (TTL, which the ROUTER's PINGs carry) 3
// intervals after the last thing it heard. The ROUTER never times out (its peer's DEALER
// does) and the DEALER's PINGs carry no TTL.
constexpr int kNeverMs = 86'400'000;

void dealerHeartbeats(zmq::socket_t& s, const PeerSettings& cfg) {
  if (cfg.heartbeat_ms <= 0) return;
  int ivl = static_cast<int>(cfg.heartbeat_ms);
  s.set(zmq::sockopt::heartbeat_ivl, ivl);
  s.set(zmq::sockopt::heartbeat_timeout, 3 * ivl);
}

void routerHeartbeats(zmq::socket_t& s, const PeerSettings& cfg) {
  if (cfg.heartbeat_ms <= 0) return;
  int ivl = static_cast<int>(cfg.heartbeat_ms);
  s.set(zmq::sockopt::heartbeat_ivl, ivl);
  s.set(zmq::sockopt::heartbeat_timeout, kNeverMs);
  // libzmq sends the TTL in tenths of a second, rounded down: round up instead.
  s.set(zmq::sockopt::heartbeat_ttl, std::min((3 * ivl + 99) / 100 * 100, 6'553'500));
}
}  // namespace

ZmqPeerTransport::ZmqPeerTransport(PeerSettings settings, const corral_host_api* host)
    : settings_(std::move(settings)), host_(host), incarnation_(newIncarnation()), ctx_(1) {
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
}

ZmqPeerTransport::~ZmqPeerTransport() {
  stop();
  closeSockets();
  try {
    ctx_.close();
  } catch (...) {
  }
}

void ZmqPeerTransport::openOut(Peer& p) {
  p.out = zmq::socket_t(ctx_, zmq::socket_type::dealer);
  p.out.set(zmq::sockopt::linger, 0);  // unsent messages are dropped at close
  if (p.address.ipv6) p.out.set(zmq::sockopt::ipv6, 1);
  dealerHeartbeats(p.out, settings_);
  // Nothing is queued for a connection that is not established, and a broken connection's
  // queue is dropped, not replayed on the next one: every connection starts with our hello.
  p.out.set(zmq::sockopt::immediate, 1);
  p.out.set(zmq::sockopt::sndhwm, kSendHwm);
  p.out.set(zmq::sockopt::rcvhwm, 16);  // peers never send on this connection
  p.out.set(zmq::sockopt::reconnect_ivl, static_cast<int>(settings_.reconnect_ms));
  p.out.set(zmq::sockopt::connect_timeout,
            static_cast<int>(std::max<int64_t>(1000, 3 * settings_.heartbeat_ms)));
  std::string monitor = "inproc://corral-peer-monitor-" + std::to_string(++monitors_);
  if (zmq_socket_monitor(p.out.handle(), monitor.c_str(),
                         ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED) != 0)
    throw zmq::error_t();
  p.monitor = zmq::socket_t(ctx_, zmq::socket_type::pair);
  p.monitor.set(zmq::sockopt::linger, 0);
  p.monitor.connect(monitor);
  p.out.connect(p.address.endpoint());
}

void ZmqPeerTransport::closeOut(Peer& p) {
  p.out.close();  // also stops its monitor
  p.monitor.close();
}

void ZmqPeerTransport::closeSockets() noexcept {
  try {
    for (auto& p : peers_) closeOut(*p);
    router_.close();
  } catch (...) {
  }
}

PeerCode ZmqPeerTransport::start(PeerSink* sink, ErrorBuf err) noexcept {
  if (sink == nullptr || running_ || io_thread_.joinable() || sink_ != nullptr) {
    err.write("zmq peer transport: start() needs a sink and may be called once");
    return PeerCode::kInvalidArgument;
  }
  if (!outbox_.valid()) {
    err.write("zmq peer transport: cannot create the wake-up eventfd");
    return PeerCode::kIoError;
  }
  sink_ = sink;
  const std::string listen = settings_.listen.text();
  try {
    router_ = zmq::socket_t(ctx_, zmq::socket_type::router);
    router_.set(zmq::sockopt::linger, 0);
    if (settings_.listen.ipv6) router_.set(zmq::sockopt::ipv6, 1);
    routerHeartbeats(router_, settings_);
    router_.set(zmq::sockopt::rcvhwm, kRecvHwm);
    // libzmq drops the connection of a peer whose message is larger: max_message_bytes is
    // the same on every member, and send() refuses larger messages.
    router_.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(settings_.max_message_bytes));
    router_.bind(settings_.listen.endpoint());
  } catch (const std::exception& e) {
    err.write("zmq peer transport: cannot listen on " + listen + ": " + e.what());
    closeSockets();
    return PeerCode::kIoError;
  }
  std::string members;
  for (auto& p : peers_) {
    try {
      openOut(*p);
    } catch (const std::exception& e) {
      err.write("zmq peer transport: cannot connect to peer " + std::to_string(p->id) + " at " +
                p->address.text() + ": " + e.what());
      closeSockets();
      return PeerCode::kIoError;
    }
    members += (members.empty() ? "" : ", ") + std::to_string(p->id) + "=" + p->address.text();
  }
  log(CORRAL_LOG_INFO, "server " + std::to_string(settings_.self_id) + " listening on " + listen +
                           "; peers [" + members +
                           "]; reconnect_ms = " + std::to_string(settings_.reconnect_ms) +
                           ", heartbeat_ms = " + std::to_string(settings_.heartbeat_ms) +
                           ", max_message_bytes = " + std::to_string(settings_.max_message_bytes));
  running_ = true;
  try {
    io_thread_ = std::thread([this] { run(); });
  } catch (const std::exception& e) {
    running_ = false;
    closeSockets();
    err.write(std::string("zmq peer transport: cannot start the I/O thread: ") + e.what());
    return PeerCode::kIoError;
  }
  return PeerCode::kOk;
}

void ZmqPeerTransport::stop() noexcept {
  if (!io_thread_.joinable()) return;
  running_ = false;
  outbox_.wake();
  io_thread_.join();  // the I/O thread reports every link down and closes its sockets
  outbox_.clear();
}

PeerCode ZmqPeerTransport::send(uint64_t peer_id, ByteView message) noexcept {
  auto it = index_.find(peer_id);
  if (it == index_.end()) return PeerCode::kUnknownPeer;
  if (message.size > settings_.max_message_bytes || (message.data == nullptr && message.size > 0))
    return PeerCode::kInvalidArgument;
  uint64_t link = link_[it->second].load(std::memory_order_acquire);
  if ((link & 1) == 0) return PeerCode::kNotConnected;
  try {
    // The one copy of the bytes: the message is handed to libzmq as it is.
    zmq::message_t body =
        message.size > 0 ? zmq::message_t(message.data, message.size) : zmq::message_t();
    outbox_.push(PeerOutgoing{it->second, link, std::move(body)});
  } catch (...) {
    return PeerCode::kIoError;  // out of memory
  }
  return PeerCode::kOk;
}

void ZmqPeerTransport::run() noexcept {
  try {
    loop();
  } catch (const std::exception& e) {
    log(CORRAL_LOG_ERROR, std::string("I/O thread failed: ") + e.what());
  } catch (...) {
    log(CORRAL_LOG_ERROR, "I/O thread failed");
  }
  for (auto& p : peers_) linkDown(*p, running_ ? "the transport failed" : "transport stopped");
  closeSockets();
}

void ZmqPeerTransport::loop() {
  std::vector<zmq::pollitem_t> items;
  while (running_) {
    // Rebuilt every turn: a reset link has new sockets, and POLLOUT is wanted only for a
    // peer with a backlog.
    items.clear();
    items.push_back({router_.handle(), 0, ZMQ_POLLIN, 0});
    items.push_back({nullptr, outbox_.wakeFd(), ZMQ_POLLIN, 0});
    for (auto& p : peers_) {
      items.push_back({p->monitor.handle(), 0, ZMQ_POLLIN, 0});
      short events = ZMQ_POLLIN;
      if (!p->backlog.empty()) events |= ZMQ_POLLOUT;
      items.push_back({p->out.handle(), 0, events, 0});
    }
    try {
      zmq::poll(items.data(), items.size(), kPollCap);
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      throw;
    }
    if (!running_) break;
    // Link changes first, so that nothing is sent or delivered on a link known to be broken.
    for (size_t i = 0; i < peers_.size(); ++i) {
      Peer& p = *peers_[i];
      if (items[2 + 2 * i].revents & ZMQ_POLLIN) readMonitor(p);
      if (items[3 + 2 * i].revents & ZMQ_POLLIN) discardIncoming(p);
    }
    for (auto& p : peers_)
      if (!p->backlog.empty()) flushBacklog(*p);
    flushOutbox();
    if (items[0].revents & ZMQ_POLLIN) receiveReady();
  }
}

void ZmqPeerTransport::readMonitor(Peer& p) {
  for (;;) {
    zmq::message_t event;
    if (!p.monitor.recv(event, zmq::recv_flags::dontwait)) return;
    bool more = event.more();
    while (more) {  // the endpoint part
      zmq::message_t rest;
      if (!p.monitor.recv(rest, zmq::recv_flags::none)) break;
      more = rest.more();
    }
    if (event.size() < 2) continue;
    uint16_t kind = 0;
    std::memcpy(&kind, event.data(), sizeof(kind));
    if (kind == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
      onOutConnected(p);
    } else if (kind == ZMQ_EVENT_DISCONNECTED) {
      onOutBroken(p, "connection lost");
    }
  }
}

void ZmqPeerTransport::discardIncoming(Peer& p) {
  for (int i = 0; i < 64; ++i) {
    zmq::message_t m;
    if (!p.out.recv(m, zmq::recv_flags::dontwait)) return;
  }
}

void ZmqPeerTransport::onOutConnected(Peer& p) {
  if (p.out_ready) onOutBroken(p, "connection replaced");
  ++p.out_connections;
  p.out_ready = true;
  p.backlog.clear();
  p.backlog_bytes = 0;
  log(CORRAL_LOG_DEBUG,
      describe(p) + ": connected (connection " + std::to_string(p.out_connections) + ")");
  queueHello(p, true);
  linkUpIfReady(p);
}

void ZmqPeerTransport::onOutBroken(Peer& p, const std::string& why) {
  // Whatever P sent us may also be lost: wait for a fresh hello before the link is up again.
  p.out_ready = false;
  p.in_fresh = false;
  p.backlog.clear();
  p.backlog_bytes = 0;
  linkDown(p, why);
}

void ZmqPeerTransport::resetOut(Peer& p, const std::string& why) {
  log(CORRAL_LOG_WARN, describe(p) + ": " + why + "; reconnecting");
  closeOut(p);
  onOutBroken(p, why);
  openOut(p);
}

void ZmqPeerTransport::queueHello(Peer& p, bool ask_reply) {
  Pending m;
  m.hello = true;
  m.head = zmq::message_t(kHelloMagic.data(), kHelloMagic.size());
  m.body = zmq::message_t(kHelloSize);
  auto* b = static_cast<uint8_t*>(m.body.data());
  std::memset(b, 0, kHelloSize);
  put64(b, settings_.self_id);
  put64(b + 8, incarnation_);
  put64(b + 16, p.out_connections);
  put64(b + 24, p.id);
  b[32] = ask_reply ? static_cast<uint8_t>(kAskReply) : 0;
  p.backlog.push_back(std::move(m));
  flushBacklog(p);
}

void ZmqPeerTransport::queueData(Peer& p, zmq::message_t body, uint64_t link) {
  Pending m;
  m.body = std::move(body);
  m.link = link;
  if (p.backlog.empty() && trySend(p, m)) return;
  p.backlog_bytes += m.body.size();
  p.backlog.push_back(std::move(m));
  const uint64_t max_bytes = std::max(kMinBacklogBytes, 4 * settings_.max_message_bytes);
  if (p.backlog.size() > kMaxBacklogMessages || p.backlog_bytes > max_bytes)
    resetOut(p, "peer is not reading (" + std::to_string(p.backlog.size()) + " messages, " +
                    std::to_string(p.backlog_bytes) + " bytes queued)");
}

void ZmqPeerTransport::flushBacklog(Peer& p) {
  while (!p.backlog.empty()) {
    Pending& m = p.backlog.front();
    // Data queued for an earlier link generation was sent before the kernel heard of the
    // break: it must not reach the peer on the next link.
    bool stale = !m.hello && m.link != link_[p.index].load(std::memory_order_relaxed);
    if (!stale && !trySend(p, m)) return;
    p.backlog_bytes -= std::min<uint64_t>(p.backlog_bytes, m.body.size());
    p.backlog.pop_front();
  }
}

bool ZmqPeerTransport::trySend(Peer& p, Pending& m) {
  if (!m.hello) return p.out.send(m.body, zmq::send_flags::dontwait).has_value();
  if (!p.out.send(m.head, zmq::send_flags::sndmore | zmq::send_flags::dontwait)) return false;
  // The rest of a message whose first part was accepted is never refused.
  if (!p.out.send(m.body, zmq::send_flags::dontwait)) {
    log(CORRAL_LOG_WARN, describe(p) + ": hello cut in half");
  }
  return true;
}

void ZmqPeerTransport::flushOutbox() {
  for (PeerOutgoing& o : outbox_.drain()) {
    Peer& p = *peers_[o.peer];
    // The link went down (and maybe up again) after send() queued this: drop it.
    if (link_[o.peer].load(std::memory_order_relaxed) != o.link) continue;
    queueData(p, std::move(o.body), o.link);
  }
}

// Reads the messages that are ready now; bounded so that queued sends are not starved.
void ZmqPeerTransport::receiveReady() {
  for (int i = 0; i < 1024 && running_; ++i) {
    std::vector<zmq::message_t> parts;
    if (!receiveMessage(router_, &parts)) return;
    handleIncoming(parts);
  }
}

// parts[0] is the routing id the ROUTER prepended.
void ZmqPeerTransport::handleIncoming(std::vector<zmq::message_t>& parts) {
  std::string routing_id = parts[0].to_string();
  if (parts.size() == 3 && isMagic(parts[1])) {
    handleHello(routing_id, parts[2]);
    return;
  }
  auto known = by_routing_id_.find(routing_id);
  if (known == by_routing_id_.end()) {
    // A connection P replaced: its tail may be lost (P's link went down and up).
    if (retired_routing_ids_.count(routing_id) != 0) return;
    warnStranger("message of " + std::to_string(parts.size() - 1) +
                 " parts from a connection that did not say hello; dropped");
    return;
  }
  Peer& p = *peers_[known->second];
  if (parts.size() != 2) {
    log(CORRAL_LOG_WARN, describe(p) + ": message of " + std::to_string(parts.size() - 1) +
                             " parts (peers send one); dropped");
    return;
  }
  if (!p.up) {
    ++p.dropped;  // sent on a link that broke: the sender learns it from its own down
    return;
  }
  zmq::message_t& body = parts[1];
  sink_->onMessage(p.id, ByteView(static_cast<const uint8_t*>(body.data()), body.size()));
}

void ZmqPeerTransport::handleHello(const std::string& routing_id, const zmq::message_t& payload) {
  if (payload.size() != kHelloSize) {
    warnStranger("hello of " + std::to_string(payload.size()) + " bytes (expected " +
                 std::to_string(kHelloSize) + "); dropped");
    return;
  }
  const auto* b = static_cast<const uint8_t*>(payload.data());
  const uint64_t sender = get64(b);
  const uint64_t incarnation = get64(b + 8);
  const uint64_t connection = get64(b + 16);
  const uint64_t target = get64(b + 24);
  const bool ask_reply = (b[32] & kAskReply) != 0;
  auto member = index_.find(sender);
  if (member == index_.end()) {
    warnStranger("hello from server " + std::to_string(sender) +
                 ", which is not among the peers; its messages are dropped");
    return;
  }
  if (target != settings_.self_id) {
    warnStranger("hello from server " + std::to_string(sender) + ", which meant to reach server " +
                 std::to_string(target) + " (check the ensemble addresses); dropped");
    return;
  }
  auto owner = by_routing_id_.find(routing_id);
  if (owner != by_routing_id_.end() && owner->second != member->second) {
    warnStranger("hello from server " + std::to_string(sender) + " on the connection of server " +
                 std::to_string(peers_[owner->second]->id) + "; dropped");
    return;
  }
  Peer& p = *peers_[member->second];
  if (p.in_known && routing_id == p.in_routing_id) {
    // The answer to our hello on a connection we already know.
    if (incarnation != p.in_incarnation || connection != p.in_connection) {
      log(CORRAL_LOG_WARN, describe(p) + ": hello changed identity on a connection; dropped");
      return;
    }
  } else {
    // A new connection from P. A hello of an older connection (or an older process) read
    // after a newer one is stale: its connection is gone already.
    if (std::find(p.retired.begin(), p.retired.end(), incarnation) != p.retired.end() ||
        (p.in_known && incarnation == p.in_incarnation && connection <= p.in_connection)) {
      log(CORRAL_LOG_DEBUG, describe(p) + ": hello of a replaced connection; ignored");
      return;
    }
    std::string why = "peer reconnected";
    if (p.in_known) {
      if (incarnation != p.in_incarnation) {
        why = "peer restarted";
        p.retired.push_back(p.in_incarnation);
        if (p.retired.size() > kMaxRetiredIncarnations) p.retired.pop_front();
      }
      by_routing_id_.erase(p.in_routing_id);
      if (retired_routing_ids_.size() >= kMaxRetiredRoutingIds) retired_routing_ids_.clear();
      retired_routing_ids_.insert(p.in_routing_id);
    }
    linkDown(p, why);  // what P sent on its previous connection may be lost
    p.in_known = true;
    p.in_routing_id = routing_id;
    p.in_incarnation = incarnation;
    p.in_connection = connection;
    by_routing_id_[routing_id] = p.index;
  }
  p.in_fresh = true;
  // P waits for a hello from us after its (re)connect; when our DEALER is not connected yet,
  // the hello that starts its next connection serves.
  if (ask_reply && p.out_ready) queueHello(p, false);
  linkUpIfReady(p);
}

void ZmqPeerTransport::linkUpIfReady(Peer& p) {
  if (p.up || !p.out_ready || !p.in_fresh) return;
  p.up = true;
  link_[p.index].fetch_add(1, std::memory_order_acq_rel);  // odd: up
  log(CORRAL_LOG_INFO,
      describe(p) + ": link up" +
          (p.dropped > 0 ? " (" + std::to_string(p.dropped) + " messages dropped while down)"
                         : std::string()));
  p.dropped = 0;
  sink_->onPeerUp(p.id);
}

void ZmqPeerTransport::linkDown(Peer& p, const std::string& why) {
  if (!p.up) return;
  p.up = false;
  // Even: down. From here send() refuses, and what it queued before is dropped.
  link_[p.index].fetch_add(1, std::memory_order_acq_rel);
  log(CORRAL_LOG_INFO, describe(p) + ": link down (" + why + ")");
  sink_->onPeerDown(p.id);
}

void ZmqPeerTransport::warnStranger(const std::string& msg) {
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

std::string ZmqPeerTransport::describe(const Peer& p) const {
  return "peer " + std::to_string(p.id) + " (" + p.address.text() + ")";
}

void ZmqPeerTransport::log(corral_log_level level, const std::string& msg) noexcept {
  try {
    hostLog(host_, level, "zmq", "peer transport: " + msg);
  } catch (...) {
  }
}

}  // namespace corral::zmqtransport
