// The zmq client transport's config table ([client.zmq] in corrald's TOML) and its parser.
#pragma once

#include <corral/plugin.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace corral::zmqtransport {

struct Settings {
  std::string listen;           // a ZeroMQ endpoint, e.g. "tcp://127.0.0.1:2281"
  int io_threads = 1;           // ZeroMQ context I/O threads
  int64_t idle_timeout_ms = 0;  // 0: never close a silent connection (see docs)
};

// Parses the TOML text of the table. On failure writes a one-line reason naming the
// offending key into err and returns nullopt.
std::optional<Settings> parseSettings(std::string_view toml_text, ErrorBuf err);

}  // namespace corral::zmqtransport
