// The "zmq" client transport: Corral's native protocol over a ZeroMQ ROUTER socket.
// Each client is a DEALER; one DEALER routing id is one connection, and each ZeroMQ message
// carries exactly one native frame (docs/transport-zmq.md).
//
// One I/O thread owns the ROUTER. The kernel thread hands outgoing frames over through a
// mutex-protected queue and wakes the I/O thread with an eventfd (ZeroMQ sockets must not be
// shared between threads).
#include <corral/client_transport.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>
#include <zmq.hpp>

#include "common/plugin_config.h"

#ifndef ZMQ_ROUTER_NOTIFY  // a draft option in libzmq 4.3; Debian's build supports it
#define ZMQ_ROUTER_NOTIFY 97
#define ZMQ_NOTIFY_CONNECT 1
#define ZMQ_NOTIFY_DISCONNECT 2
#endif

namespace {

using namespace corral;
using Clock = std::chrono::steady_clock;

struct Settings {
  std::string listen;
  int io_threads = 1;
  int64_t idle_timeout_ms = 0;  // 0: never close a silent connection
};

class ZmqClientTransport final : public ClientTransport {
 public:
  ZmqClientTransport(Settings s, const corral_host_api* host)
      : settings_(std::move(s)), host_(host), ctx_(settings_.io_threads) {
    max_frame_ = host != nullptr && host->max_request_bytes > 0 ? host->max_request_bytes
                                                                : 1048575;
  }
  ~ZmqClientTransport() override { stop(); }

  TransportCode start(ClientSink* sink, ErrorBuf err) noexcept override {
    sink_ = sink;
    try {
      router_ = zmq::socket_t(ctx_, zmq::socket_type::router);
      router_.set(zmq::sockopt::router_mandatory, 1);
      router_.set(zmq::sockopt::linger, 0);
      router_.set(zmq::sockopt::sndhwm, 100000);
      router_.set(zmq::sockopt::rcvhwm, 100000);
      // Protects memory from absurd messages; frames above max_request_bytes (but below
      // this) are read, logged and refused by the size check below.
      router_.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(max_frame_) * 8 + 65536);
      int notify = ZMQ_NOTIFY_DISCONNECT;
      notify_ = zmq_setsockopt(router_.handle(), ZMQ_ROUTER_NOTIFY, &notify, sizeof(notify)) == 0;
      router_.bind(settings_.listen);
      bound_ = router_.get(zmq::sockopt::last_endpoint);
    } catch (const zmq::error_t& e) {
      err.write("cannot listen on " + settings_.listen + ": " + e.what());
      return TransportCode::kIoError;
    }
    wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd_ < 0) {
      err.write("eventfd failed");
      return TransportCode::kIoError;
    }
    if (!notify_ && settings_.idle_timeout_ms == 0)
      log(CORRAL_LOG_INFO, "ZMQ_ROUTER_NOTIFY unavailable: connection loss is detected by the "
                           "kernel's session timeout only");
    running_ = true;
    thread_ = std::thread([this] { run(); });
    return TransportCode::kOk;
  }

  void stop() noexcept override {
    if (!running_.exchange(false)) return;
    wake();
    if (thread_.joinable()) thread_.join();
    router_.close();
    if (wake_fd_ >= 0) ::close(wake_fd_);
    wake_fd_ = -1;
  }

  TransportCode send(uint64_t conn_id, ByteView frame) noexcept override {
    try {
      std::lock_guard<std::mutex> lock(mu_);
      if (open_.count(conn_id) == 0) return TransportCode::kUnknownConnection;
      outbox_.push_back(Outgoing{conn_id, std::string(frame.str()), false});
    } catch (...) {
      return TransportCode::kIoError;
    }
    wake();
    return TransportCode::kOk;
  }

  void close(uint64_t conn_id) noexcept override {
    try {
      std::lock_guard<std::mutex> lock(mu_);
      if (open_.erase(conn_id) == 0) return;
      outbox_.push_back(Outgoing{conn_id, std::string(), true});
    } catch (...) {
      return;
    }
    wake();
  }

  const char* boundAddress() const noexcept override { return bound_.c_str(); }

 private:
  struct Outgoing {
    uint64_t conn;
    std::string frame;
    bool close;
  };
  struct Connection {
    std::string routing_id;
    std::string remote;
    Clock::time_point last_heard;
  };

  void log(corral_log_level level, const std::string& msg) {
    hostLog(host_, level, "zmq", msg);
  }

  void wake() noexcept {
    uint64_t one = 1;
    if (wake_fd_ >= 0) {
      ssize_t ignored = ::write(wake_fd_, &one, sizeof(one));
      (void)ignored;
    }
  }

  void run() {
    zmq::pollitem_t items[2] = {{router_.handle(), 0, ZMQ_POLLIN, 0},
                                {nullptr, wake_fd_, ZMQ_POLLIN, 0}};
    auto poll_timeout = std::chrono::milliseconds(
        settings_.idle_timeout_ms > 0 ? std::max<int64_t>(10, settings_.idle_timeout_ms / 4)
                                      : 1000);
    while (running_) {
      try {
        zmq::poll(items, 2, poll_timeout);
      } catch (const zmq::error_t& e) {
        if (e.num() == EINTR) continue;
        log(CORRAL_LOG_ERROR, std::string("poll failed: ") + e.what());
        break;
      }
      if (items[1].revents & ZMQ_POLLIN) {
        uint64_t n;
        ssize_t ignored = ::read(wake_fd_, &n, sizeof(n));
        (void)ignored;
      }
      flushOutbox();
      if (items[0].revents & ZMQ_POLLIN) receiveAvailable();
      if (settings_.idle_timeout_ms > 0) closeIdle();
    }
    // Whatever is still open is gone for the kernel too.
    std::vector<uint64_t> gone;
    for (auto& [conn, c] : conns_) gone.push_back(conn);
    conns_.clear();
    by_routing_id_.clear();
    {
      std::lock_guard<std::mutex> lock(mu_);
      open_.clear();
      outbox_.clear();
    }
    for (uint64_t conn : gone) sink_->onClose(conn);
  }

  // Reads what is ready now (bounded, so outgoing frames are not starved).
  void receiveAvailable() {
    for (int i = 0; i < 1024 && running_; ++i) {
      zmq::message_t id;
      zmq::recv_result_t r;
      try {
        r = router_.recv(id, zmq::recv_flags::dontwait);
      } catch (const zmq::error_t& e) {
        log(CORRAL_LOG_WARN, std::string("receive failed: ") + e.what());
        return;
      }
      if (!r) return;
      std::vector<zmq::message_t> parts;
      while (id.more() || (!parts.empty() && parts.back().more())) {
        zmq::message_t part;
        if (!router_.recv(part, zmq::recv_flags::none)) break;
        parts.push_back(std::move(part));
        if (parts.size() > 16 && !parts.back().more()) break;
      }
      handleMessage(id.to_string(), parts);
    }
  }

  void handleMessage(const std::string& routing_id, std::vector<zmq::message_t>& parts) {
    auto known = by_routing_id_.find(routing_id);
    if (parts.empty() || (parts.size() == 1 && parts[0].size() == 0)) {
      // ZMQ_ROUTER_NOTIFY: an empty message is a (dis)connect notification. For a known
      // connection it means the peer went away; an unknown one opens on its first frame.
      if (known != by_routing_id_.end()) {
        if (notify_) {
          closeConnection(known->second, "disconnected");
        } else {
          log(CORRAL_LOG_WARN, "client " + std::to_string(known->second) + ": empty frame; closing");
          closeConnection(known->second, nullptr);
        }
      }
      return;
    }
    uint64_t conn;
    if (known == by_routing_id_.end()) {
      conn = ++last_conn_;
      std::string remote = peerAddress(parts[0]);
      conns_[conn] = Connection{routing_id, remote, Clock::now()};
      by_routing_id_[routing_id] = conn;
      {
        std::lock_guard<std::mutex> lock(mu_);
        open_.insert({conn, true});
      }
      sink_->onOpen(conn, ByteView(remote.data(), remote.size()));
    } else {
      conn = known->second;
    }
    Connection& c = conns_[conn];
    c.last_heard = Clock::now();
    if (parts.size() != 1) {
      log(CORRAL_LOG_WARN, "client " + std::to_string(conn) + " from " + c.remote + ": message of " +
                               std::to_string(parts.size()) + " parts (one frame expected); closing");
      closeConnection(conn, nullptr);
      return;
    }
    if (parts[0].size() > max_frame_) {
      log(CORRAL_LOG_WARN, "client " + std::to_string(conn) + " from " + c.remote + ": frame of " +
                               std::to_string(parts[0].size()) +
                               " bytes exceeds max_request_bytes " + std::to_string(max_frame_) +
                               "; closing");
      closeConnection(conn, nullptr);
      return;
    }
    sink_->onFrame(conn, ByteView(static_cast<const char*>(parts[0].data()), parts[0].size()));
  }

  static std::string peerAddress(zmq::message_t& msg) {
    const char* ip = zmq_msg_gets(msg.handle(), "Peer-Address");
    return std::string(ip != nullptr ? ip : "0.0.0.0") + ":0";
  }

  // Forgets a connection on the I/O thread and tells the kernel.
  void closeConnection(uint64_t conn, const char* why) {
    auto it = conns_.find(conn);
    if (it == conns_.end()) return;
    if (why != nullptr)
      log(CORRAL_LOG_DEBUG, "client " + std::to_string(conn) + " from " + it->second.remote + " " + why);
    by_routing_id_.erase(it->second.routing_id);
    conns_.erase(it);
    {
      std::lock_guard<std::mutex> lock(mu_);
      open_.erase(conn);
    }
    sink_->onClose(conn);
  }

  void flushOutbox() {
    std::deque<Outgoing> batch;
    {
      std::lock_guard<std::mutex> lock(mu_);
      batch.swap(outbox_);
    }
    for (Outgoing& o : batch) {
      auto it = conns_.find(o.conn);
      if (it == conns_.end()) continue;
      if (o.close) {
        closeConnection(o.conn, nullptr);
        continue;
      }
      try {
        zmq::message_t id(it->second.routing_id.data(), it->second.routing_id.size());
        zmq::message_t body(o.frame.data(), o.frame.size());
        if (!router_.send(id, zmq::send_flags::sndmore | zmq::send_flags::dontwait) ||
            !router_.send(body, zmq::send_flags::dontwait)) {
          log(CORRAL_LOG_WARN, "client " + std::to_string(o.conn) + ": send queue full; closing");
          closeConnection(o.conn, nullptr);
        }
      } catch (const zmq::error_t& e) {
        // EHOSTUNREACH (router_mandatory): the peer is gone.
        closeConnection(o.conn, e.num() == EHOSTUNREACH ? "unreachable" : e.what());
      }
    }
  }

  void closeIdle() {
    auto now = Clock::now();
    auto limit = std::chrono::milliseconds(settings_.idle_timeout_ms);
    std::vector<uint64_t> idle;
    for (auto& [conn, c] : conns_)
      if (now - c.last_heard > limit) idle.push_back(conn);
    for (uint64_t conn : idle) closeConnection(conn, "idle; closing");
  }

  Settings settings_;
  const corral_host_api* host_;
  size_t max_frame_;
  zmq::context_t ctx_;
  zmq::socket_t router_;
  std::string bound_;
  bool notify_ = false;
  int wake_fd_ = -1;
  ClientSink* sink_ = nullptr;
  std::atomic<bool> running_{false};
  std::thread thread_;

  // I/O thread only.
  std::unordered_map<uint64_t, Connection> conns_;
  std::unordered_map<std::string, uint64_t> by_routing_id_;
  uint64_t last_conn_ = 0;

  // Shared with the kernel thread.
  std::mutex mu_;
  std::unordered_map<uint64_t, bool> open_;
  std::deque<Outgoing> outbox_;
};

ClientTransport* createZmq(std::string_view config, const corral_host_api* host, ErrorBuf err) {
  auto table = corral::plugins::parseConfig(config, err);
  if (!table ||
      !corral::plugins::onlyKnownKeys(*table, {"listen", "io_threads", "idle_timeout_ms"},
                                      "zmq transport", err))
    return nullptr;
  Settings s;
  if (auto v = (*table)["listen"]; v) {
    if (!v.is_string()) {
      err.write("zmq transport: 'listen' must be a string such as \"tcp://127.0.0.1:2281\"");
      return nullptr;
    }
    s.listen = v.value_or(std::string());
  }
  if (s.listen.empty()) {
    err.write("zmq transport: 'listen' is required (e.g. \"tcp://127.0.0.1:2281\")");
    return nullptr;
  }
  if (auto v = (*table)["io_threads"]; v) {
    if (!v.is_integer() || v.value_or(int64_t{0}) < 1 || v.value_or(int64_t{0}) > 64) {
      err.write("zmq transport: 'io_threads' must be an integer from 1 to 64");
      return nullptr;
    }
    s.io_threads = static_cast<int>(v.value_or(int64_t{1}));
  }
  if (auto v = (*table)["idle_timeout_ms"]; v) {
    if (!v.is_integer() || v.value_or(int64_t{-1}) < 0) {
      err.write("zmq transport: 'idle_timeout_ms' must be a non-negative integer");
      return nullptr;
    }
    s.idle_timeout_ms = v.value_or(int64_t{0});
  }
  return new ZmqClientTransport(std::move(s), host);
}

}  // namespace

CORRAL_DEFINE_PLUGIN(CORRAL_PLUGIN_CLIENT_TRANSPORT, corral::ClientTransport, "zmq", "1.0.0",
                     createZmq)
