// A peer transport's config: the table the host builds from [ensemble] (self_id, listen,
// peers) followed by the user's [peer.<plugin>] table, and its parser. Shared by the peer
// transport plugins, which take the same keys.
#pragma once

#include <corral/plugin.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace corral::plugins {

// A "host:port" address. host is as written, without IPv6 brackets.
struct PeerAddress {
  std::string host;
  uint16_t port = 0;
  bool ipv6 = false;  // written as "[addr]:port"

  std::string text() const;      // "host:port" or "[addr]:port"
  std::string endpoint() const;  // "tcp://" + text()
};

struct PeerMember {
  uint64_t id = 0;
  PeerAddress address;
};

struct PeerSettings {
  uint64_t self_id = 0;
  PeerAddress listen;
  std::vector<PeerMember> peers;  // every other member, in config order
  int64_t reconnect_ms = 100;     // interval between connection attempts to a peer
  int64_t heartbeat_ms = 150;     // ping interval; a link silent for 3x is broken; 0: off
  uint64_t max_message_bytes = 256ull << 20;  // larger messages are refused by send()
};

// Parses "host:port" ("[v6addr]:port" for IPv6); false when it is not of that form.
bool parsePeerAddress(std::string_view text, PeerAddress* out);

// Parses the TOML text. On failure writes a one-line reason naming the offending key into err,
// prefixed with `who` (e.g. "zmq peer transport"), and returns nullopt.
std::optional<PeerSettings> parsePeerSettings(std::string_view toml_text, std::string_view who,
                                              ErrorBuf err);

}  // namespace corral::plugins
