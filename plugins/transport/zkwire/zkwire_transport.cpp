// The "zkwire" client transport: the ZooKeeper client protocol over TCP (length-prefixed
// jute records), so unmodified ZooKeeper clients (zkCli.sh, kazoo, Curator, the C client)
// use Corral. Each connection's frames are translated to and from native frames
// (translate.h); the kernel does the rest.
//
// One Boost.Asio I/O thread owns every socket and every connection's translation state.
// Pipelining clients send many frames at once, so a connection reads whatever has arrived
// (up to 64 KB per read) and hands every complete frame on; replies the kernel sends
// between two turns of the I/O thread go out in one gathered write per connection. Frames
// (and close requests) from the kernel wait in one outbox, in order; the I/O thread is woken
// once per batch, not per frame, through an eventfd it reads: asio::post took the
// scheduler's mutex, which the busy I/O thread held most of the time, so every wake-up was
// a futex contention on both sides.
//
// Defences: frames above max_request_bytes, unknown opcodes and garbage close the offending
// connection with a log line; a connection that does not finish its handshake, or leaves a
// frame half-sent, within frame_timeout_ms is closed (slowloris); at most
// max_connections_per_ip connections per client address (ZooKeeper's maxClientCnxns).
#include <corral/client_transport.h>

#include <utility>  // before Boost.Asio 1.74, which uses std::exchange without it

#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <sys/eventfd.h>
#include <unistd.h>

#include "common/plugin_config.h"
#include "four_letter_words.h"
#include "translate.h"

namespace {

using namespace corral;
namespace asio = boost::asio;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

struct Settings {
  std::string host = "127.0.0.1";
  uint16_t port = 2181;
  int64_t max_connections_per_ip = 60;
  int64_t frame_timeout_ms = 10000;
};

class ZkwireTransport;

struct Connection : std::enable_shared_from_this<Connection> {
  Connection(tcp::socket s, uint64_t i) : socket(std::move(s)), id(i) {}
  tcp::socket socket;
  uint64_t id;
  std::string ip;
  std::string remote;
  zkwire::ZkSession session;
  std::string in;  // bytes read and not yet handed on: at most one partial frame
  size_t in_have = 0;
  std::deque<std::string> out;
  std::vector<std::string> sending;  // what the write in progress holds
  bool writing = false;
  bool flush_pending = false;
  bool close_after_writes = false;
  bool closed = false;
  bool first_frame = true;
  uint64_t received = 0;
  uint64_t sent = 0;
  Clock::time_point waiting_since = Clock::now();  // start of an unfinished frame/handshake
  bool mid_frame = true;                           // the handshake counts as unfinished
};

class ZkwireTransport final : public ClientTransport {
 public:
  ZkwireTransport(Settings s, const corral_host_api* host)
      : settings_(std::move(s)), host_(host), acceptor_(io_), timer_(io_) {
    max_frame_ = host != nullptr && host->max_request_bytes > 0 ? host->max_request_bytes : 1048575;
  }
  ~ZkwireTransport() override {
    stop();
    if (wake_fd_ >= 0) ::close(wake_fd_);
  }

  TransportCode start(ClientSink* sink, ErrorBuf err) noexcept override {
    sink_ = sink;
    try {
      tcp::endpoint ep(asio::ip::make_address(settings_.host), settings_.port);
      acceptor_.open(ep.protocol());
      acceptor_.set_option(tcp::acceptor::reuse_address(true));
      acceptor_.bind(ep);
      acceptor_.listen();
      auto bound = acceptor_.local_endpoint();
      bound_ = bound.address().to_string() + ":" + std::to_string(bound.port());
    } catch (const std::exception& e) {
      err.write("cannot listen on " + settings_.host + ":" + std::to_string(settings_.port) + ": " +
                e.what());
      return TransportCode::kIoError;
    }
    int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) {
      err.write(std::string("cannot create the wake-up eventfd: ") + std::strerror(errno));
      return TransportCode::kIoError;
    }
    wake_fd_ = fd;
    wake_.assign(fd);
    awaitWake();
    accept();
    tick();
    running_ = true;
    thread_ = std::thread([this] {
      try {
        io_.run();
      } catch (const std::exception& e) {
        log(CORRAL_LOG_ERROR, std::string("I/O thread stopped: ") + e.what());
      }
    });
    return TransportCode::kOk;
  }

  void stop() noexcept override {
    if (!running_.exchange(false)) return;
    asio::post(io_, [this] {
      boost::system::error_code ec;
      acceptor_.close(ec);
      timer_.cancel();
      wake_.release();  // the fd stays open until the destructor: send() may still write
      std::vector<std::shared_ptr<Connection>> all;
      for (auto& [id, c] : conns_) all.push_back(c);
      for (auto& c : all) finish(c, nullptr);
    });
    if (thread_.joinable()) thread_.join();
  }

  TransportCode send(uint64_t conn_id, ByteView frame) noexcept override {
    try {
      toOutbox(Outgoing{conn_id, std::string(frame.str()), false});
    } catch (...) {
      return TransportCode::kIoError;
    }
    return TransportCode::kOk;
  }

  // After the frames sent before it: it travels the same outbox.
  void close(uint64_t conn_id) noexcept override {
    try {
      toOutbox(Outgoing{conn_id, std::string(), true});
    } catch (...) {
    }
  }

  const char* boundAddress() const noexcept override { return bound_.c_str(); }

 private:
  // The kernel's answer to a question (host API, ABI 1.1); "" from an older host.
  std::string askKernel(const char* question) {
    if (host_ == nullptr || host_->struct_size < offsetof(corral_host_api, query) + sizeof(void*) ||
        host_->query == nullptr)
      return "";
    std::string buf(4096, '\0');
    size_t n = host_->query(host_->host_ctx, question, buf.data(), buf.size());
    if (n > buf.size()) {
      buf.resize(n);
      n = host_->query(host_->host_ctx, question, buf.data(), buf.size());
    }
    buf.resize(std::min(n, buf.size()));
    return buf;
  }

  void log(corral_log_level level, const std::string& msg) { hostLog(host_, level, "zkwire", msg); }

  void accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
      if (ec) {
        if (ec != asio::error::operation_aborted) accept();
        return;
      }
      boost::system::error_code ignored;
      auto remote = socket.remote_endpoint(ignored);
      std::string ip = remote.address().to_string();
      if (per_ip_[ip] >= settings_.max_connections_per_ip) {
        log(CORRAL_LOG_WARN, "refusing a connection from " + ip + ": already " +
                                 std::to_string(per_ip_[ip]) +
                                 " connections from it (max_connections_per_ip)");
        socket.close(ignored);
        accept();
        return;
      }
      socket.set_option(tcp::no_delay(true), ignored);
      auto c = std::make_shared<Connection>(std::move(socket), ++last_id_);
      c->ip = ip;
      c->remote = ip + ":" + std::to_string(remote.port());
      ++per_ip_[ip];
      conns_[c->id] = c;
      read(c);
      accept();
    });
  }

  static constexpr size_t kReadChunk = 64 * 1024;

  void read(const std::shared_ptr<Connection>& c) {
    if (c->in.size() < c->in_have + kReadChunk) c->in.resize(c->in_have + kReadChunk);
    c->socket.async_read_some(asio::buffer(c->in.data() + c->in_have, c->in.size() - c->in_have),
                              [this, c](boost::system::error_code ec, size_t n) {
                                if (ec) return finish(c, nullptr);
                                c->in_have += n;
                                if (onBytes(c)) read(c);
                              });
  }

  // Hands on every complete frame read so far; false when the connection reads no more.
  bool onBytes(const std::shared_ptr<Connection>& c) {
    size_t at = 0;
    while (!c->closed && c->in_have - at >= 4) {
      const char* p = c->in.data() + at;
      if (c->first_frame && zkwire::isFourLetterWord(std::string_view(p, 4))) {
        answerFourLetterWord(c, std::string_view(p, 4));
        return false;
      }
      uint32_t len = (static_cast<uint8_t>(p[0]) << 24) | (static_cast<uint8_t>(p[1]) << 16) |
                     (static_cast<uint8_t>(p[2]) << 8) | static_cast<uint8_t>(p[3]);
      if (len > max_frame_) {
        finish(c, ("frame of " + std::to_string(len) + " bytes exceeds max_request_bytes " +
                   std::to_string(max_frame_))
                      .c_str());
        return false;
      }
      if (c->in_have - at - 4 < len) break;
      onFrame(c, std::string_view(p + 4, len));
      at += 4 + static_cast<size_t>(len);
    }
    if (c->closed) return false;
    if (at > 0) {
      std::memmove(c->in.data(), c->in.data() + at, c->in_have - at);
      c->in_have -= at;
    }
    // Part of a frame is here: the rest must come within frame_timeout_ms.
    if (c->in_have > 0 && !c->mid_frame) {
      c->mid_frame = true;
      c->waiting_since = Clock::now();
    }
    // A buffer grown for one large frame is given back once it is handled.
    if (c->in_have == 0 && c->in.size() > 4 * kReadChunk) std::string().swap(c->in);
    return true;
  }

  void answerFourLetterWord(const std::shared_ptr<Connection>& c, std::string_view word) {
    // A four-letter word instead of a session: answer it and close, like ZooKeeper.
    zkwire::ServerFacts facts;
    facts.listen = bound_;
    facts.data_dir = host_ != nullptr && host_->data_dir != nullptr ? host_->data_dir : "";
    facts.max_connections_per_ip = settings_.max_connections_per_ip;
    facts.max_request_bytes = static_cast<int64_t>(max_frame_);
    facts.packets_received = packets_in_;
    facts.packets_sent = packets_out_;
    for (const auto& [id, conn] : conns_) {
      if (conn == c) continue;
      facts.connections.push_back(
          {conn->remote, conn->session.sessionId(), conn->received, conn->sent});
    }
    facts.ask = [this](const char* question) { return askKernel(question); };
    queue(c, zkwire::answerFourLetterWord(word, facts));
    c->close_after_writes = true;
  }

  void onFrame(const std::shared_ptr<Connection>& c, std::string_view body) {
    ++packets_in_;
    ++c->received;
    std::string native, error;
    bool first = c->first_frame;
    if (!c->session.fromClient(body, &native, &error)) return finish(c, error.c_str());
    if (first) {
      c->first_frame = false;
      sink_->onOpen(c->id, ByteView(c->remote.data(), c->remote.size()));
      opened_.insert({c->id, true});
    } else {
      c->mid_frame = false;
    }
    sink_->onFrame(c->id, ByteView(native.data(), native.size()));
  }

  struct Outgoing {
    uint64_t conn_id;
    std::string frame;
    bool close;  // close the connection once what was sent before is written
  };

  void toOutbox(Outgoing o) {
    bool wake;
    {
      std::lock_guard<std::mutex> lock(outbox_mu_);
      outbox_.push_back(std::move(o));
      wake = outbox_.size() == 1;
    }
    if (wake) {
      uint64_t one = 1;
      [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof(one));
    }
  }

  // Reading the eventfd consumes its count; asio tries the read at once when armed, so a
  // wake-up written meanwhile is never missed.
  void awaitWake() {
    wake_.async_read_some(asio::buffer(&wake_count_, sizeof(wake_count_)),
                          [this](const boost::system::error_code& ec, size_t) {
                            if (ec) return;  // stopped
                            drainOutbox();
                            awaitWake();
                          });
  }

  void drainOutbox() {
    std::vector<Outgoing> batch;
    {
      std::lock_guard<std::mutex> lock(outbox_mu_);
      batch.swap(outbox_);
    }
    batching_ = true;
    for (Outgoing& o : batch) {
      if (!o.close) {
        deliver(o.conn_id, o.frame);
        continue;
      }
      auto it = conns_.find(o.conn_id);
      if (it != conns_.end()) finishAfterWrites(std::shared_ptr<Connection>(it->second));
    }
    batching_ = false;
    for (auto& c : to_flush_) {
      c->flush_pending = false;
      if (!c->writing && !c->closed) writeNext(c);
    }
    to_flush_.clear();
  }

  void deliver(uint64_t conn_id, const std::string& native) {
    auto it = conns_.find(conn_id);
    if (it == conns_.end()) return;
    auto c = it->second;
    std::string out, error;
    bool close_after = false;
    if (!c->session.toClient(native, &out, &close_after, &error)) {
      log(CORRAL_LOG_ERROR, "client " + c->remote + ": cannot translate a reply: " + error);
      return;
    }
    if (c->session.handshakeDone()) c->mid_frame = false;
    if (c->session.lastZxid() > last_zxid_) last_zxid_ = c->session.lastZxid();
    if (!out.empty()) {
      ++packets_out_;
      ++c->sent;
      queue(c, std::move(out));
    }
    if (close_after) {
      finishAfterWrites(c);
    }
  }

  // Closes the connection once everything queued for it is written (at once if nothing is).
  void finishAfterWrites(const std::shared_ptr<Connection>& c) {
    c->close_after_writes = true;
    if (!c->writing && !c->flush_pending) finish(c, nullptr);
  }

  void queue(const std::shared_ptr<Connection>& c, std::string bytes) {
    c->out.push_back(std::move(bytes));
    if (c->writing) return;
    if (!batching_) return writeNext(c);
    if (!c->flush_pending) {
      c->flush_pending = true;
      to_flush_.push_back(c);
    }
  }

  // Everything queued goes out in one gathered write.
  void writeNext(const std::shared_ptr<Connection>& c) {
    if (c->out.empty()) {
      c->writing = false;
      if (c->close_after_writes) finish(c, nullptr);
      return;
    }
    c->writing = true;
    c->sending.clear();
    std::vector<asio::const_buffer> buffers;
    buffers.reserve(c->out.size());
    while (!c->out.empty()) {
      c->sending.push_back(std::move(c->out.front()));
      c->out.pop_front();
      buffers.push_back(asio::buffer(c->sending.back()));
    }
    asio::async_write(c->socket, buffers, [this, c](boost::system::error_code ec, size_t) {
      if (ec) return finish(c, nullptr);
      c->sending.clear();
      writeNext(c);
    });
  }

  // Closes a connection (once), with a log line when `why` says it was the client's fault.
  void finish(const std::shared_ptr<Connection>& c, const char* why) {
    if (c->closed) return;
    c->closed = true;
    if (why != nullptr)
      log(CORRAL_LOG_WARN, "client " + c->remote + ": " + why + "; closing the connection");
    boost::system::error_code ignored;
    c->socket.shutdown(tcp::socket::shutdown_both, ignored);
    c->socket.close(ignored);
    conns_.erase(c->id);
    if (--per_ip_[c->ip] <= 0) per_ip_.erase(c->ip);
    if (opened_.erase(c->id) > 0) sink_->onClose(c->id);
  }

  // Once a second: connections stuck in a handshake or a half-sent frame are closed.
  void tick() {
    timer_.expires_after(std::chrono::seconds(1));
    timer_.async_wait([this](boost::system::error_code ec) {
      if (ec) return;
      auto limit = std::chrono::milliseconds(settings_.frame_timeout_ms);
      auto now = Clock::now();
      std::vector<std::shared_ptr<Connection>> stuck;
      for (auto& [id, c] : conns_)
        if (c->mid_frame && !c->writing && now - c->waiting_since > limit) stuck.push_back(c);
      for (auto& c : stuck)
        finish(c, c->first_frame ? "no handshake within frame_timeout_ms"
                                 : "a frame left unfinished for frame_timeout_ms");
      tick();
    });
  }

  Settings settings_;
  const corral_host_api* host_;
  size_t max_frame_;
  asio::io_context io_;
  tcp::acceptor acceptor_;
  asio::steady_timer timer_;
  std::thread thread_;
  std::atomic<bool> running_{false};
  std::string bound_;
  ClientSink* sink_ = nullptr;
  std::mutex outbox_mu_;
  std::vector<Outgoing> outbox_;              // frames and closes from the kernel thread
  asio::posix::stream_descriptor wake_{io_};  // an eventfd: the outbox is not empty
  uint64_t wake_count_ = 0;
  int wake_fd_ = -1;

  // I/O thread only.
  std::unordered_map<uint64_t, std::shared_ptr<Connection>> conns_;
  std::unordered_map<uint64_t, bool> opened_;  // connections the kernel knows
  std::map<std::string, int64_t> per_ip_;
  uint64_t last_id_ = 0;
  uint64_t packets_in_ = 0;
  uint64_t packets_out_ = 0;
  int64_t last_zxid_ = 0;
  bool batching_ = false;  // draining the outbox: writes wait until it is drained
  std::vector<std::shared_ptr<Connection>> to_flush_;
};

ClientTransport* createZkwire(std::string_view config, const corral_host_api* host, ErrorBuf err) {
  auto table = corral::plugins::parseConfig(config, err);
  if (!table || !corral::plugins::onlyKnownKeys(
                    *table, {"listen", "max_connections_per_ip", "frame_timeout_ms"},
                    "zkwire transport", err))
    return nullptr;
  Settings s;
  if (auto v = (*table)["listen"]; v) {
    std::string listen = v.value_or(std::string());
    size_t colon = listen.rfind(':');
    int port = -1;
    try {
      if (v.is_string() && colon != std::string::npos && colon > 0)
        port = std::stoi(listen.substr(colon + 1));
    } catch (...) {
    }
    if (port < 0 || port > 65535) {
      err.write("zkwire transport: 'listen' must be \"host:port\" (port 0 picks a free one)");
      return nullptr;
    }
    s.host = listen.substr(0, colon);
    s.port = static_cast<uint16_t>(port);
  }
  if (auto v = (*table)["max_connections_per_ip"]; v) {
    if (!v.is_integer() || v.value_or(int64_t{0}) < 1) {
      err.write("zkwire transport: 'max_connections_per_ip' must be a positive integer");
      return nullptr;
    }
    s.max_connections_per_ip = v.value_or(int64_t{60});
  }
  if (auto v = (*table)["frame_timeout_ms"]; v) {
    if (!v.is_integer() || v.value_or(int64_t{0}) < 100) {
      err.write("zkwire transport: 'frame_timeout_ms' must be an integer of at least 100");
      return nullptr;
    }
    s.frame_timeout_ms = v.value_or(int64_t{10000});
  }
  return new ZkwireTransport(std::move(s), host);
}

}  // namespace

CORRAL_DEFINE_PLUGIN(CORRAL_PLUGIN_CLIENT_TRANSPORT, corral::ClientTransport, "zkwire", "0.1.0",
                     createZkwire)
