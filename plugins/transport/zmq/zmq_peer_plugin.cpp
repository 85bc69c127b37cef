// Entry point of libcorral_peer_zmq.so: the "zmq" peer transport.
#include <corral/peer_transport.h>

#include "common/peer_settings.h"
#include "zmq_peer_transport.h"

namespace {

corral::PeerTransport* createZmqPeerTransport(std::string_view config, const corral_host_api* host,
                                              corral::ErrorBuf err) {
  std::optional<corral::plugins::PeerSettings> settings =
      corral::plugins::parsePeerSettings(config, "zmq peer transport", err);
  if (!settings) return nullptr;
  return new corral::zmqtransport::ZmqPeerTransport(std::move(*settings), host);
}

}  // namespace

CORRAL_DEFINE_PLUGIN(CORRAL_PLUGIN_PEER_TRANSPORT, corral::PeerTransport, "zmq", "1.0.0",
                     createZmqPeerTransport)
