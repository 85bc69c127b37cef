// ClientTransport: carries client connections between the network and the kernel.
// Implementations: plugins/transport/zmq (native msgpack frames over a ZeroMQ ROUTER socket)
// and plugins/transport/zkwire (the ZooKeeper client protocol).
//
// A transport does I/O only. It delivers each client message to the kernel as one frame in
// the Corral native encoding (docs/protocol.md; corral/codec.h encodes and decodes it), and
// writes frames the kernel sends back. A transport that speaks another wire protocol
// translates to and from native frames. Session logic (handshake, pings, timeouts) is the
// kernel's: a transport only reports connections opening, frames arriving and connections
// closing.
//
// Connection ids are chosen by the transport, unique for the lifetime of the instance, and
// never 0.
//
// Thread-safety: start() and stop() are called from the host's main thread. send() and
// close() are called from the kernel thread only. The ClientSink may be called from any one
// transport thread; the host's sink is thread-safe.
#pragma once

#include <corral/plugin.h>

#include <cstdint>

namespace corral {

class ClientSink {
 public:
  virtual ~ClientSink() = default;
  // A new connection from remote_addr ("ip:port", used by the ip auth scheme).
  virtual void onOpen(uint64_t conn_id, ByteView remote_addr) noexcept = 0;
  // One complete frame from the connection (never larger than max_request_bytes).
  virtual void onFrame(uint64_t conn_id, ByteView frame) noexcept = 0;
  // The connection is gone (peer closed, protocol error, or close() was called).
  // No frame for conn_id follows.
  virtual void onClose(uint64_t conn_id) noexcept = 0;
};

enum class TransportCode : int32_t {
  kOk = 0,
  kUnknownConnection = 1,  // conn_id is closed or never existed; the frame was dropped
  kIoError = 2,
  kInvalidArgument = 3,
};

class ClientTransport {
 public:
  virtual ~ClientTransport() = default;

  // Binds and starts serving. The sink outlives the transport. On failure (e.g. address in
  // use) err names the address and the reason and the server does not start.
  virtual TransportCode start(ClientSink* sink, ErrorBuf err) noexcept = 0;

  // Stops serving and closes every connection; no sink call happens after it returns.
  virtual void stop() noexcept = 0;

  // Queues one native frame for the connection; frames to one connection are written in
  // the order sent. Returns at once.
  virtual TransportCode send(uint64_t conn_id, ByteView frame) noexcept = 0;

  // Closes the connection after the frames already sent to it are written.
  virtual void close(uint64_t conn_id) noexcept = 0;

  // The address actually bound (e.g. with port 0 resolved), NUL-terminated; valid after a
  // successful start() and until the instance is destroyed.
  virtual const char* boundAddress() const noexcept = 0;
};

}  // namespace corral
