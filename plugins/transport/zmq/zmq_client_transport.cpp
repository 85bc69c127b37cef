#include "zmq_client_transport.h"

#include "recv_message.h"

#include <arpa/inet.h>

#include <algorithm>
#include <limits>

// ZMQ_ROUTER_NOTIFY is a draft option in libzmq 4.3 (zmq.h declares it only under
// ZMQ_BUILD_DRAFT_API). Its value is fixed, so we always try it: a libzmq built with drafts
// accepts it, others refuse it with EINVAL and we fall back to idle_timeout_ms.
#ifndef ZMQ_ROUTER_NOTIFY
#define ZMQ_ROUTER_NOTIFY 97
#define ZMQ_NOTIFY_DISCONNECT 2
#endif

namespace corral::zmqtransport {

namespace {
// Per-peer high-water marks, in messages. A client that does not read 100k replies is
// closed rather than buffered without bound; a client that floods requests is paused by
// libzmq (it stops reading that TCP connection) once 10k are waiting.
constexpr int kSendHwm = 100'000;
constexpr int kRecvHwm = 10'000;
constexpr uint64_t kDefaultMaxFrame = 1'048'575;  // ZooKeeper's jute.maxbuffer
constexpr std::chrono::milliseconds kPollCap{1000};
}  // namespace

ZmqClientTransport::ZmqClientTransport(Settings settings, const corral_host_api* host)
    : settings_(std::move(settings)),
      host_(host),
      max_frame_(host != nullptr && host->max_request_bytes > 0 ? host->max_request_bytes
                                                                : kDefaultMaxFrame),
      ctx_(settings_.io_threads) {}

ZmqClientTransport::~ZmqClientTransport() {
  stop();
  try {
    router_.close();
    ctx_.close();
  } catch (...) {
  }
}

void ZmqClientTransport::configureSocket() {
  router_ = zmq::socket_t(ctx_, zmq::socket_type::router);
  // Sends to a vanished peer fail with EHOSTUNREACH instead of vanishing silently.
  router_.set(zmq::sockopt::router_mandatory, 1);
  router_.set(zmq::sockopt::sndhwm, kSendHwm);
  router_.set(zmq::sockopt::rcvhwm, kRecvHwm);
  // libzmq drops (without telling us) a peer whose message exceeds ZMQ_MAXMSGSIZE. Keep that
  // well above max_request_bytes so ordinary oversize frames reach the size check, which
  // logs and closes; the cap only protects memory from absurd messages (libzmq allocates a
  // message's announced size before its bytes arrive).
  const uint64_t cap = std::numeric_limits<int64_t>::max() / 16;
  int64_t max_msg = max_frame_ < cap ? static_cast<int64_t>(max_frame_ * 8 + 65536) : -1;
  router_.set(zmq::sockopt::maxmsgsize, max_msg);
  int notify = ZMQ_NOTIFY_DISCONNECT;
  notify_ = zmq_setsockopt(router_.handle(), ZMQ_ROUTER_NOTIFY, &notify, sizeof(notify)) == 0;
}

TransportCode ZmqClientTransport::start(ClientSink* sink, ErrorBuf err) noexcept {
  if (sink == nullptr || running_ || io_thread_.joinable()) {
    err.write("zmq transport: start() needs a sink and may be called once");
    return TransportCode::kInvalidArgument;
  }
  if (!outbox_.valid()) {
    err.write("zmq transport: cannot create the wake-up eventfd");
    return TransportCode::kIoError;
  }
  try {
    configureSocket();
    router_.bind(settings_.listen);
    bound_ = router_.get(zmq::sockopt::last_endpoint);
  } catch (const std::exception& e) {
    err.write("cannot listen on " + settings_.listen + ": " + e.what());
    try {
      router_.set(zmq::sockopt::linger, 0);
      router_.close();
    } catch (...) {
    }
    return TransportCode::kIoError;
  }
  sink_ = sink;
  if (notify_) {
    log(CORRAL_LOG_INFO, "listening on " + bound_ + "; lost clients are detected at once");
  } else {
    log(CORRAL_LOG_INFO,
        "listening on " + bound_ + "; ZMQ_ROUTER_NOTIFY unavailable, lost clients are " +
            (settings_.idle_timeout_ms > 0
                 ? "closed after " + std::to_string(settings_.idle_timeout_ms) + " ms of silence"
                 : std::string("left to the kernel's session timeout")));
  }
  running_ = true;
  try {
    io_thread_ = std::thread([this] { run(); });
  } catch (const std::exception& e) {
    running_ = false;
    err.write(std::string("zmq transport: cannot start the I/O thread: ") + e.what());
    return TransportCode::kIoError;
  }
  return TransportCode::kOk;
}

void ZmqClientTransport::stop() noexcept {
  if (!io_thread_.joinable()) return;
  running_ = false;
  outbox_.wake();
  io_thread_.join();  // the I/O thread reports every open connection closed before it ends
  try {
    router_.set(zmq::sockopt::linger, 0);  // unsent replies are dropped, not waited for
    router_.close();
  } catch (...) {
  }
}

TransportCode ZmqClientTransport::send(uint64_t conn_id, ByteView frame) noexcept {
  try {
    // The one copy of the bytes: the message is handed to libzmq as it is.
    if (!outbox_.push(conn_id, zmq::message_t(frame.data, frame.size)))
      return TransportCode::kUnknownConnection;
  } catch (...) {
    return TransportCode::kIoError;  // out of memory
  }
  return TransportCode::kOk;
}

void ZmqClientTransport::close(uint64_t conn_id) noexcept {
  try {
    outbox_.requestClose(conn_id);
  } catch (...) {
  }
}

void ZmqClientTransport::run() noexcept {
  try {
    loop();
  } catch (const std::exception& e) {
    log(CORRAL_LOG_ERROR, std::string("I/O thread failed: ") + e.what());
  } catch (...) {
    log(CORRAL_LOG_ERROR, "I/O thread failed");
  }
  closeAll();
}

void ZmqClientTransport::loop() {
  zmq::pollitem_t items[2] = {{router_.handle(), 0, ZMQ_POLLIN, 0},
                              {nullptr, outbox_.wakeFd(), ZMQ_POLLIN, 0}};
  // Without idle checks the timeout only bounds how long a missed wake-up could stall.
  std::chrono::milliseconds timeout = kPollCap;
  if (settings_.idle_timeout_ms > 0)
    timeout = std::clamp(std::chrono::milliseconds(settings_.idle_timeout_ms / 4),
                         std::chrono::milliseconds(5), kPollCap);
  Clock::time_point next_idle_check = Clock::now() + timeout;
  while (running_) {
    try {
      zmq::poll(items, 2, timeout);
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      throw;
    }
    if (!running_) break;
    flushOutbox();
    if (items[0].revents & ZMQ_POLLIN) receiveReady();
    // Scanning every connection is done once per interval, not once per message.
    if (settings_.idle_timeout_ms > 0 && Clock::now() >= next_idle_check) {
      closeIdle();
      next_idle_check = Clock::now() + timeout;
    }
  }
}

// Reads the messages that are ready now; bounded so that queued replies are not starved.
void ZmqClientTransport::receiveReady() {
  for (int i = 0; i < 1024 && running_; ++i) {
    std::vector<zmq::message_t> parts;
    if (!receiveMessage(router_, &parts)) return;
    handleMessage(parts);
  }
}

// parts[0] is the routing id the ROUTER prepended; a client message is exactly one more part.
void ZmqClientTransport::handleMessage(std::vector<zmq::message_t>& parts) {
  std::string routing_id = parts[0].to_string();
  auto known = by_routing_id_.find(routing_id);
  if (parts.size() != 2) {
    std::string who = known != by_routing_id_.end() ? describe(known->second) : "unknown client";
    log(CORRAL_LOG_WARN, who + ": message of " + std::to_string(parts.size() - 1) +
                             " parts (clients send one frame per message); dropped");
    return;
  }
  zmq::message_t& body = parts[1];
  if (body.size() == 0) {
    // With ZMQ_ROUTER_NOTIFY an empty message is the disconnect notification; without it, an
    // empty frame is a protocol error. Either way the connection ends; for an unknown
    // routing id there is nothing to end.
    if (known == by_routing_id_.end()) return;
    if (notify_) {
      log(CORRAL_LOG_DEBUG, describe(known->second) + ": disconnected");
    } else {
      log(CORRAL_LOG_WARN, describe(known->second) + ": empty frame; closing");
    }
    closeConnection(known->second);
    return;
  }
  uint64_t conn = known != by_routing_id_.end() ? known->second : openConnection(routing_id, body);
  Connection& c = conns_.at(conn);
  c.last_heard = Clock::now();
  if (body.size() > max_frame_) {
    log(CORRAL_LOG_WARN, describe(conn) + ": frame of " + std::to_string(body.size()) +
                             " bytes exceeds max_request_bytes " + std::to_string(max_frame_) +
                             "; closing");
    closeConnection(conn);
    return;
  }
  // After close() the kernel expects no more frames; the close itself is still queued.
  if (!outbox_.isOpen(conn)) return;
  sink_->onFrame(conn, ByteView(static_cast<const uint8_t*>(body.data()), body.size()));
}

uint64_t ZmqClientTransport::openConnection(const std::string& routing_id,
                                            const zmq::message_t& body) {
  uint64_t conn = ++last_conn_;
  std::string remote = peerAddress(body);
  conns_.emplace(conn, Connection{routing_id, remote, Clock::now()});
  by_routing_id_.emplace(routing_id, conn);
  outbox_.markOpen(conn);
  sink_->onOpen(conn, ByteView(remote.data(), remote.size()));
  return conn;
}

// libzmq records the peer's IP on every received message over TCP; it has no port to
// offer. Over ipc:// the property holds process credentials instead, which must not reach
// the ip auth scheme, so anything that is not an IP address becomes 0.0.0.0.
std::string ZmqClientTransport::peerAddress(const zmq::message_t& msg) {
  const char* ip = zmq_msg_gets(msg.handle(), "Peer-Address");
  unsigned char parsed[sizeof(in6_addr)];
  bool is_ip = ip != nullptr &&
               (inet_pton(AF_INET, ip, parsed) == 1 || inet_pton(AF_INET6, ip, parsed) == 1);
  return std::string(is_ip ? ip : "0.0.0.0") + ":0";
}

// Forgets the connection (its routing id starts a new connection from now on) and tells
// the kernel.
void ZmqClientTransport::closeConnection(uint64_t conn) {
  auto it = conns_.find(conn);
  if (it == conns_.end()) return;
  by_routing_id_.erase(it->second.routing_id);
  conns_.erase(it);
  outbox_.forget(conn);
  sink_->onClose(conn);
}

void ZmqClientTransport::closeAll() {
  std::vector<uint64_t> open;
  for (const auto& [conn, c] : conns_) open.push_back(conn);
  std::sort(open.begin(), open.end());
  for (uint64_t conn : open) closeConnection(conn);
  outbox_.clear();
}

void ZmqClientTransport::flushOutbox() {
  for (Outgoing& o : outbox_.drain()) {
    auto it = conns_.find(o.conn);
    if (it == conns_.end()) continue;  // already closed by the I/O thread
    if (o.close) {
      closeConnection(o.conn);
      continue;
    }
    const std::string& rid = it->second.routing_id;
    try {
      zmq::message_t id(rid.data(), rid.size());
      // The routing id part of a message is accepted or refused as a whole with the body.
      if (!router_.send(id, zmq::send_flags::sndmore | zmq::send_flags::dontwait) ||
          !router_.send(o.frame, zmq::send_flags::dontwait)) {
        log(CORRAL_LOG_WARN, describe(o.conn) + ": " + std::to_string(kSendHwm) +
                                 " replies unread (send high-water mark); closing");
        closeConnection(o.conn);
      }
    } catch (const zmq::error_t& e) {
      // EHOSTUNREACH (ZMQ_ROUTER_MANDATORY): the peer's connection is gone.
      log(CORRAL_LOG_DEBUG, describe(o.conn) + ": send failed (" + e.what() + "); closing");
      closeConnection(o.conn);
    }
  }
}

void ZmqClientTransport::closeIdle() {
  const auto limit = std::chrono::milliseconds(settings_.idle_timeout_ms);
  const auto now = Clock::now();
  std::vector<uint64_t> idle;
  for (const auto& [conn, c] : conns_)
    if (now - c.last_heard >= limit) idle.push_back(conn);
  for (uint64_t conn : idle) {
    log(CORRAL_LOG_INFO, describe(conn) + ": silent for " +
                             std::to_string(settings_.idle_timeout_ms) + " ms; closing");
    closeConnection(conn);
  }
}

std::string ZmqClientTransport::describe(uint64_t conn) const {
  auto it = conns_.find(conn);
  return "client " + std::to_string(conn) + " from " +
         (it != conns_.end() ? it->second.remote : std::string("?"));
}

void ZmqClientTransport::log(corral_log_level level, const std::string& msg) noexcept {
  hostLog(host_, level, "zmq", msg);
}

}  // namespace corral::zmqtransport
