// The native wire encoding of corral/proto.h (msgpack; the schema is in docs/protocol.md).
// One frame is one message. Clients send Connect and Request frames; servers send
// ConnectResponse, Response and Event frames.
//
// Decoding never trusts its input: any malformed, truncated or out-of-range frame is
// rejected with a reason, never a crash or an exception.
#pragma once

#include <corral/proto.h>

#include <string>
#include <string_view>

namespace corral {

enum class FrameKind : uint8_t {
  kConnect = 1,
  kConnectResponse = 2,
  kRequest = 3,
  kResponse = 4,
  kEvent = 5,
};

// A decoded frame: `kind` says which one member is meaningful.
struct Frame {
  FrameKind kind = FrameKind::kRequest;
  ConnectRequest connect;
  ConnectResponse connected;
  Request request;
  Response response;
  WatchEvent event;
};

std::string encodeConnect(const ConnectRequest& m);
std::string encodeConnectResponse(const ConnectResponse& m);
std::string encodeRequest(const Request& m);
std::string encodeResponse(const Response& m);
std::string encodeEvent(const WatchEvent& m);

// Appending variants for hot paths that reuse a buffer.
void appendResponse(const Response& m, std::string* out);
void appendEvent(const WatchEvent& m, std::string* out);

// Decodes one frame. On failure returns false and sets *error to a one-line reason
// (e.g. "truncated frame", "unknown opcode 999", "field 'path' is not a string").
bool decodeFrame(std::string_view bytes, Frame* out, std::string* error);

}  // namespace corral
