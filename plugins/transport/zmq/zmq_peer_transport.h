// The "zmq" peer transport: server-to-server messages of an ensemble over ZeroMQ.
//
// Sockets. Each server binds one ROUTER on its `listen` address and connects one DEALER to
// every peer's ROUTER: a server sends on its DEALERs and receives on its ROUTER, so a link
// is two TCP connections, one per direction. A data message is one ZeroMQ part (the bytes,
// possibly empty); a hello is two parts, kHelloMagic and a fixed-size payload (sender id,
// sender incarnation, connection number, the id the sender believes it reached, flags).
//
// Hellos. A DEALER sends a hello as the first message of every new connection (libzmq
// makes a new ROUTER routing id per connection), asking for one in reply. The ROUTER side
// accepts messages only from the routing id whose hello is the latest from a member, so
// anything before a hello, from an older connection, or from a stranger is dropped. The
// incarnation is random per process; the connection number grows per process, so a late
// hello of an older connection cannot displace a newer one.
//
// Up and down. The link to peer P is up when this server's DEALER to P has completed its
// handshake (socket monitor: HANDSHAKE_SUCCEEDED) and a hello from P has arrived since.
// It goes down when the DEALER's connection breaks (monitor: DISCONNECTED, at once when
// the peer's process dies; after 3 heartbeats when the peer's host goes silent), when P
// opens a new connection to us (P restarted, or its DEALER reconnected: messages on the
// old one may be lost), or when P stops reading and our queue to it overflows. Clearing
// "hello heard" when the DEALER breaks, and answering a new connection's hello with a
// hello on the existing one, makes both ends see down then up whenever either direction
// broke, so each kernel learns that its FIFO may have lost messages.
//
// Ordering. One DEALER connection carries a FIFO; messages are accepted only between up
// and down; every message send() queues carries the link generation it saw, and the I/O
// thread drops it when the link went down (or down and up) since. So per peer, messages
// arrive in order, at most once, whole, and onMessage is only ever called while the link
// is up.
//
// Threads. send() runs on the kernel thread and only touches the PeerOutbox and atomic link
// generations; one I/O thread owns every socket and makes every sink call.
#pragma once

#include <corral/peer_transport.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>
#include <zmq.hpp>

#include "common/peer_settings.h"
#include "peer_outbox.h"

namespace corral::zmqtransport {

using plugins::PeerAddress;
using plugins::PeerSettings;

class ZmqPeerTransport final : public PeerTransport {
 public:
  ZmqPeerTransport(PeerSettings settings, const corral_host_api* host);
  ~ZmqPeerTransport() override;

  PeerCode start(PeerSink* sink, ErrorBuf err) noexcept override;
  void stop() noexcept override;
  PeerCode send(uint64_t peer_id, ByteView message) noexcept override;

 private:
  using Clock = std::chrono::steady_clock;

  // A message waiting for the DEALER to accept it (send high-water mark reached, or the
  // hello before the connection's pipe is attached).
  struct Pending {
    zmq::message_t head;  // kHelloMagic for a hello; unused for data
    zmq::message_t body;
    bool hello = false;
    uint64_t link = 0;  // data: the link generation it was sent for
  };

  // One member. Owned by the I/O thread, except `link`, which send() reads.
  struct Peer {
    size_t index = 0;  // in peers_ and link_
    uint64_t id = 0;
    PeerAddress address;
    // Outgoing direction: our DEALER and its monitor.
    zmq::socket_t out;
    zmq::socket_t monitor;
    uint64_t out_connections = 0;  // handshakes so far: the connection number in our hellos
    bool out_ready = false;        // handshake done, our hello queued first
    std::deque<Pending> backlog;
    uint64_t backlog_bytes = 0;
    // Incoming direction: the latest connection P said hello on.
    bool in_known = false;
    std::string in_routing_id;
    uint64_t in_incarnation = 0;
    uint64_t in_connection = 0;
    bool in_fresh = false;         // a hello from P arrived since our DEALER last (re)connected
    std::deque<uint64_t> retired;  // P's earlier incarnations, whose hellos are stale
    bool up = false;
    uint64_t dropped = 0;  // messages received while down, reported at the next up
  };

  void openOut(Peer& p);  // creates and connects the DEALER and its monitor
  void closeOut(Peer& p);
  void closeSockets() noexcept;
  void run() noexcept;
  void loop();
  void readMonitor(Peer& p);
  void discardIncoming(Peer& p);
  void onOutConnected(Peer& p);
  void onOutBroken(Peer& p, const std::string& why);
  void resetOut(Peer& p, const std::string& why);
  void receiveReady();
  void handleIncoming(std::vector<zmq::message_t>& parts);
  void handleHello(const std::string& routing_id, const zmq::message_t& payload);
  void queueHello(Peer& p, bool ask_reply);
  void queueData(Peer& p, zmq::message_t body, uint64_t link);
  void flushBacklog(Peer& p);
  bool trySend(Peer& p, Pending& m);
  void flushOutbox();
  void linkUpIfReady(Peer& p);
  void linkDown(Peer& p, const std::string& why);
  void shutdownLinks();
  void warnStranger(const std::string& msg);
  void log(corral_log_level level, const std::string& msg) noexcept;
  std::string describe(const Peer& p) const;

  PeerSettings settings_;
  const corral_host_api* host_;
  const uint64_t incarnation_;
  zmq::context_t ctx_;
  zmq::socket_t router_;
  PeerSink* sink_ = nullptr;
  PeerOutbox outbox_;
  std::atomic<bool> running_{false};
  std::thread io_thread_;

  // The membership: fixed at construction, so send() may read the index without a lock.
  std::vector<std::unique_ptr<Peer>> peers_;
  std::unordered_map<uint64_t, size_t> index_;
  // Per peer: even = down, odd = up; incremented at every change (written by the I/O thread).
  std::unique_ptr<std::atomic<uint64_t>[]> link_;

  // Owned by the I/O thread.
  std::unordered_map<std::string, size_t> by_routing_id_;  // current incoming connections
  std::unordered_set<std::string> retired_routing_ids_;    // connections peers replaced
  uint64_t monitors_ = 0;                                  // names inproc monitor endpoints
  Clock::time_point last_stranger_warning_{};
  uint64_t strangers_suppressed_ = 0;
};

}  // namespace corral::zmqtransport
