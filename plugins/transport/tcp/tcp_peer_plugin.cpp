// Entry point of libcorral_peer_tcp.so: the "tcp" peer transport.
#include <corral/peer_transport.h>

#include "common/peer_settings.h"
#include "tcp_peer_transport.h"

namespace {

corral::PeerTransport* createTcpPeerTransport(std::string_view config, const corral_host_api* host,
                                              corral::ErrorBuf err) {
  std::optional<corral::plugins::PeerSettings> settings =
      corral::plugins::parsePeerSettings(config, "tcp peer transport", err);
  if (!settings) return nullptr;
  return new corral::tcptransport::TcpPeerTransport(std::move(*settings), host);
}

}  // namespace

CORRAL_DEFINE_PLUGIN(CORRAL_PLUGIN_PEER_TRANSPORT, corral::PeerTransport, "tcp", "1.0.0",
                     createTcpPeerTransport)
