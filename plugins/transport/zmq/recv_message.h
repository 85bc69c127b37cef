// Receiving one whole ZeroMQ message (all its parts) from a ROUTER without blocking; shared
// by the client and peer transports.
#pragma once

#include <vector>
#include <zmq.hpp>

namespace corral::zmqtransport {

// Fills *parts with the next message's parts (routing id first); false when none is ready.
inline bool receiveMessage(zmq::socket_t& socket, std::vector<zmq::message_t>* parts) {
  parts->clear();
  zmq::message_t part;
  if (!socket.recv(part, zmq::recv_flags::dontwait)) return false;
  bool more = part.more();
  parts->push_back(std::move(part));
  // A ZeroMQ message is delivered atomically: once its first part is here, all are.
  while (more) {
    zmq::message_t next;
    if (!socket.recv(next, zmq::recv_flags::none)) break;
    more = next.more();
    parts->push_back(std::move(next));
  }
  return true;
}

}  // namespace corral::zmqtransport
