// PeerTransport: carries messages between the servers of an ensemble (ZAB's election,
// proposals, acks, commits, sync). Implementation: plugins/transport/zmq (peer side).
// Used once the kernel replicates (see DESIGN.md "Replication"); a standalone server loads
// none.
//
// Guarantees the kernel relies on: per peer, messages arrive in the order they were sent,
// each at most once, whole (one send = one onMessage). Messages may be lost when a link
// breaks; the transport reconnects by itself and reports links going up and down, so the
// kernel knows when a FIFO may have lost messages and resynchronises.
//
// The host passes the transport its table from the config plus the membership it derives
// from [ensemble]: `self_id`, `listen` (this server's peer address) and `peers`, an array of
// "id=host:port" entries (every other voter and observer).
//
// Thread-safety: start() and stop() are called from the host's main thread; send() from the
// kernel thread only. The PeerSink may be called from any one transport thread.
#pragma once

#include <corral/plugin.h>

#include <cstdint>

namespace corral {

class PeerSink {
 public:
  virtual ~PeerSink() = default;
  // A link to peer_id is established (after a (re)connect). Earlier messages may be lost.
  virtual void onPeerUp(uint64_t peer_id) noexcept = 0;
  // The link to peer_id broke; sends to it are dropped until onPeerUp.
  virtual void onPeerDown(uint64_t peer_id) noexcept = 0;
  // One whole message from peer_id.
  virtual void onMessage(uint64_t peer_id, ByteView message) noexcept = 0;
};

enum class PeerCode : int32_t {
  kOk = 0,
  kUnknownPeer = 1,   // peer_id is not in the membership
  kNotConnected = 2,  // the link is down; the message was dropped
  kIoError = 3,
  kInvalidArgument = 4,
};

class PeerTransport {
 public:
  virtual ~PeerTransport() = default;

  // Binds this server's peer address and starts connecting to every peer. The sink outlives
  // the transport. On failure err names the address and the reason.
  virtual PeerCode start(PeerSink* sink, ErrorBuf err) noexcept = 0;

  // Closes every link; no sink call happens after it returns.
  virtual void stop() noexcept = 0;

  // Queues one message for peer_id; returns at once.
  virtual PeerCode send(uint64_t peer_id, ByteView message) noexcept = 0;
};

}  // namespace corral
