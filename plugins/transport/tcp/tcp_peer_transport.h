// The "tcp" peer transport: server-to-server messages of an ensemble over plain TCP, with
// one I/O thread (epoll) between the kernel and the sockets.
//
// Why not ZeroMQ: every message took four thread hand-offs on its way (kernel -> transport
// thread -> libzmq I/O thread, and libzmq I/O thread -> transport thread -> kernel), each a
// wake-up of some 30 us on a busy machine, and a write through a follower crosses the
// network four times. Here the same trip takes two: this thread writes what the kernel
// queued, the peer's thread reads it and hands it to its kernel.
//
// Connections. Each server listens on its `listen` address and connects to every peer, so a
// link is two TCP connections, one per direction, as with the zmq transport: a server sends
// on the connection it opened ("out") and receives on the one the peer opened ("in"). On
// "out" travel frames; back on it travel only pings, which tell the connecting side that the
// peer is alive.
//
// Frames: u32 length (little-endian, of what follows) | u8 kind | body. Kinds: data (the
// kernel's message), hello (the first frame of every connection: magic, sender id, sender
// incarnation, connection number, the id the sender believes it reached, flags), ping.
//
// Up and down, ordering, hellos: the same rules as the zmq transport (see
// zmq_peer_transport.h). The link to P is up when our connection to P is established (our
// hello queued first) and a hello from P has arrived since; it goes down when our connection
// breaks (error, end of stream, or no ping for 3 heartbeats), when P's connection to us
// breaks, when P opens a new connection to us, or when P stops reading and our queue to it
// overflows. A hello that asks for a reply is answered on our connection, so both ends see
// down then up whenever either direction broke. Every frame send() queues is dropped when
// the link goes down, so per peer messages arrive in order, at most once, whole, and
// onMessage is only called while the link is up.
//
// Threads. send() runs on the kernel thread: it appends the frame to the peer's buffer
// under that peer's lock and wakes the I/O thread when the buffer was empty, so one wake-up
// carries everything the kernel queued meanwhile. The I/O thread owns every socket and makes
// every sink call. A third thread only writes the pings, so that a peer whose I/O thread is
// busy (a sink call that takes long) still counts as alive: only a silent process, host or
// network breaks a link.
#pragma once

#include <corral/peer_transport.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/peer_settings.h"

namespace corral::tcptransport {

using plugins::PeerAddress;
using plugins::PeerSettings;

class TcpPeerTransport final : public PeerTransport {
 public:
  TcpPeerTransport(PeerSettings settings, const corral_host_api* host);
  ~TcpPeerTransport() override;

  PeerCode start(PeerSink* sink, ErrorBuf err) noexcept override;
  void stop() noexcept override;
  PeerCode send(uint64_t peer_id, ByteView message) noexcept override;

 private:
  using Clock = std::chrono::steady_clock;

  // One socket and its buffers. Owned by the I/O thread.
  struct Conn {
    int fd = -1;
    uint64_t serial = 0;  // names the connection: epoll data, replacement checks
    std::string in;       // read buffer; in[in_begin, in_end) is read and not yet parsed
    size_t in_begin = 0;
    size_t in_end = 0;
    std::string out;  // bytes being written (taken from the peer's queue, or pings)
    size_t out_done = 0;
    bool want_write = false;  // EPOLLOUT armed
  };

  // A connection a peer opened to us, until it says hello (or is closed).
  struct Incoming {
    Conn conn;
    Clock::time_point deadline;  // for the hello
    size_t peer = SIZE_MAX;      // once it said hello: the peer's index
  };

  // One member.
  struct Peer {
    size_t index = 0;
    uint64_t id = 0;
    PeerAddress address;

    // Outgoing direction (I/O thread).
    Conn out;
    bool connecting = false;  // a non-blocking connect is under way
    bool out_ready = false;   // connected, our hello queued first
    uint64_t out_connections = 0;
    Clock::time_point reconnect_at{};  // when out.fd < 0: next attempt
    Clock::time_point connect_deadline{};
    Clock::time_point last_heard{};  // last byte read on out (the peer's pings)

    // Incoming direction (I/O thread): the serial of P's latest connection that said hello.
    uint64_t in_serial = 0;
    bool in_known = false;
    uint64_t in_incarnation = 0;
    uint64_t in_connection = 0;
    bool in_fresh = false;
    std::deque<uint64_t> retired;  // P's earlier incarnations
    bool up = false;
    uint64_t dropped = 0;

    // Frames the kernel queued, not yet taken by the I/O thread. Guarded by mu; the I/O
    // thread clears it (under mu) whenever the link generation changes.
    std::mutex mu;
    std::string queued;
    bool overflow = false;  // the peer stopped reading: refuse sends until the reset
  };

  void run() noexcept;
  void loop();
  void closeAll() noexcept;
  Clock::time_point nextDeadline(Clock::time_point now) const;
  void runTimers(Clock::time_point now);

  // Outgoing connections.
  void startConnect(Peer& p, Clock::time_point now);
  void onConnectDone(Peer& p);
  void onOutReadable(Peer& p);
  void breakOut(Peer& p, const std::string& why, bool warn);
  void queueHello(Peer& p, bool ask_reply);
  void flushPeer(Peer& p);

  // Incoming connections.
  void acceptReady();
  void onInReadable(Incoming& in);
  bool handleInFrame(Incoming& in, uint8_t kind, const uint8_t* body, size_t size);
  bool handleHello(Incoming& in, const uint8_t* body, size_t size);
  void closeIncoming(uint64_t serial, const std::string& why);

  // Pings.
  void pingLoop() noexcept;
  // Sets P's ping socket (-1: none; cleared before the fd is closed), if it is only_if.
  void setPingFd(size_t peer, int fd, int only_if = -1);
  void stopPinger() noexcept;

  // Sockets.
  bool writeSome(Conn& c);  // false: the connection failed
  void armWrite(Conn& c, bool on);
  void closeConn(Conn& c);
  void watch(int fd, uint64_t serial, uint32_t events);

  void linkUpIfReady(Peer& p);
  void linkDown(Peer& p, const std::string& why);
  void warnStranger(const std::string& msg);
  void log(corral_log_level level, const std::string& msg) noexcept;
  std::string describe(const Peer& p) const;

  PeerSettings settings_;
  const corral_host_api* host_;
  const uint64_t incarnation_;
  PeerSink* sink_ = nullptr;
  std::atomic<bool> running_{false};
  std::thread io_thread_;
  int epoll_fd_ = -1;
  int listen_fd_ = -1;
  int wake_fd_ = -1;
  std::atomic<bool> wake_pending_{false};

  // The pinger: per peer, the socket of P's current connection to us.
  std::thread pinger_;
  std::mutex ping_mu_;
  std::condition_variable ping_cv_;
  std::vector<int> ping_fds_;
  bool pinging_ = false;

  // The membership: fixed at construction, so send() may read the index without a lock.
  std::vector<std::unique_ptr<Peer>> peers_;
  std::unordered_map<uint64_t, size_t> index_;
  // Per peer: even = down, odd = up; changed by the I/O thread under the peer's mu.
  std::unique_ptr<std::atomic<uint64_t>[]> link_;

  // I/O thread only.
  uint64_t next_serial_ = 2;                         // 0: the listener, 1: the wake-up eventfd
  uint64_t out_counter_ = 0;                         // numbers outgoing connections
  std::unordered_map<uint64_t, Incoming> incoming_;  // by serial
  Clock::time_point last_stranger_warning_{};
  uint64_t strangers_suppressed_ = 0;
};

}  // namespace corral::tcptransport
