// The "zmq" client transport: Corral's native frames over a ZeroMQ ROUTER socket.
//
// Each client is a DEALER; one DEALER routing id is one connection, and each ZeroMQ message
// carries exactly one native frame (docs/transport-zmq.md). One I/O thread owns the ROUTER
// and makes every sink call; the kernel thread reaches it only through the Outbox.
#pragma once

#include <corral/client_transport.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>
#include <zmq.hpp>

#include "outbox.h"
#include "zmq_settings.h"

namespace corral::zmqtransport {

class ZmqClientTransport final : public ClientTransport {
 public:
  ZmqClientTransport(Settings settings, const corral_host_api* host);
  ~ZmqClientTransport() override;

  TransportCode start(ClientSink* sink, ErrorBuf err) noexcept override;
  void stop() noexcept override;
  TransportCode send(uint64_t conn_id, ByteView frame) noexcept override;
  void close(uint64_t conn_id) noexcept override;
  const char* boundAddress() const noexcept override { return bound_.c_str(); }

 private:
  using Clock = std::chrono::steady_clock;
  struct Connection {
    std::string routing_id;
    std::string remote;  // "ip:port" as given to onOpen
    Clock::time_point last_heard;
  };

  void configureSocket();
  void run() noexcept;
  void loop();
  void receiveReady();
  void handleMessage(std::vector<zmq::message_t>& parts);
  uint64_t openConnection(const std::string& routing_id, const zmq::message_t& body);
  static std::string peerAddress(const zmq::message_t& msg);
  void closeConnection(uint64_t conn);
  void closeAll();
  void flushOutbox();
  void closeIdle();
  void log(corral_log_level level, const std::string& msg) noexcept;
  std::string describe(uint64_t conn) const;

  Settings settings_;
  const corral_host_api* host_;
  uint64_t max_frame_;
  zmq::context_t ctx_;
  zmq::socket_t router_;
  std::string bound_;
  bool notify_ = false;  // ZMQ_ROUTER_NOTIFY is active: disconnects are reported
  ClientSink* sink_ = nullptr;
  Outbox outbox_;
  std::atomic<bool> running_{false};
  std::thread io_thread_;

  // Owned by the I/O thread while it runs.
  std::unordered_map<uint64_t, Connection> conns_;
  std::unordered_map<std::string, uint64_t> by_routing_id_;
  uint64_t last_conn_ = 0;
};

}  // namespace corral::zmqtransport
