// libFuzzer target for the zkwire decoder: arbitrary bytes as a client's frames, before and
// after the handshake, and as kernel frames to translate back. Nothing may crash, and every
// frame the decoder accepts must come out as a native frame the kernel can decode.
#include <corral/codec.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "translate.h"

namespace {

using corral::zkwire::ZkSession;

// Brings a session past its handshake, as the kernel would.
void establish(ZkSession& s) {
  std::string connect;
  connect.append(4, '\0');                // protocolVersion
  connect.append(8, '\0');                // lastZxidSeen
  connect.append("\x00\x00\x27\x10", 4);  // timeOut 10000
  connect.append(8, '\0');                // sessionId
  connect.append("\x00\x00\x00\x10", 4);  // passwd length 16
  connect.append(16, '\0');
  std::string native, error, out;
  bool close_after = false;
  s.fromClient(connect, &native, &error);
  corral::ConnectResponse r;
  r.timeout_ms = 10000;
  r.session_id = 0x0100000000000001;
  r.password = std::string(16, 'p');
  s.toClient(corral::encodeConnectResponse(r), &out, &close_after, &error);
}

void checkNative(const std::string& native) {
  corral::Frame f;
  std::string error;
  if (!corral::decodeFrame(native, &f, &error)) std::abort();  // the translation is broken
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string native, error, out;
  bool close_after = false;

  ZkSession fresh;  // as the first frame of a connection
  if (fresh.fromClient(input, &native, &error)) checkNative(native);

  ZkSession session;  // as a request on an established session
  establish(session);
  if (session.fromClient(input, &native, &error)) {
    checkNative(native);
    // Answer it with a reply of every shape the kernel can produce.
    corral::Frame f;
    corral::decodeFrame(native, &f, &error);
    corral::Response r;
    r.xid = f.request.xid;
    r.result.op = f.request.op.op;
    r.result.has_stat = true;
    r.result.children = {"a"};
    for (size_t i = 0; i < f.request.ops.size(); ++i) r.results.emplace_back();
    session.toClient(corral::encodeResponse(r), &out, &close_after, &error);
  }
  session.toClient(input, &out, &close_after, &error);  // garbage from the "kernel"
  return 0;
}
