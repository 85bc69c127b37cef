// Entry point of libcorral_client_zmq.so: the "zmq" client transport.
#include <corral/client_transport.h>

#include "zmq_client_transport.h"
#include "zmq_settings.h"

namespace {

corral::ClientTransport* createZmqTransport(std::string_view config, const corral_host_api* host,
                                            corral::ErrorBuf err) {
  std::optional<corral::zmqtransport::Settings> settings =
      corral::zmqtransport::parseSettings(config, err);
  if (!settings) return nullptr;
  return new corral::zmqtransport::ZmqClientTransport(std::move(*settings), host);
}

}  // namespace

CORRAL_DEFINE_PLUGIN(CORRAL_PLUGIN_CLIENT_TRANSPORT, corral::ClientTransport, "zmq", "1.0.0",
                     createZmqTransport)
