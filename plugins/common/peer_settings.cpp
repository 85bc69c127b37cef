#include "peer_settings.h"

#include <charconv>
#include <set>

#include "plugin_config.h"

namespace corral::plugins {

namespace {
bool fail(std::string_view who, ErrorBuf err, const std::string& msg) {
  err.write(std::string(who) + ": " + msg);
  return false;
}

// Parses a decimal number made only of digits (no sign, no spaces) within [lo, hi].
bool parseNumber(std::string_view s, uint64_t lo, uint64_t hi, uint64_t* out) {
  if (s.empty() || s.size() > 20) return false;
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v < lo || v > hi) return false;
  *out = v;
  return true;
}
}  // namespace

std::string PeerAddress::text() const {
  return (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::string PeerAddress::endpoint() const {
  return "tcp://" + text();
}

bool parsePeerAddress(std::string_view text, PeerAddress* out) {
  PeerAddress a;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return false;
    a.host = std::string(text.substr(1, close - 1));
    a.ipv6 = true;
    port = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return false;
    a.host = std::string(text.substr(0, colon));
    port = text.substr(colon + 1);
    if (a.host.find(':') != std::string::npos) return false;  // IPv6 needs brackets
  }
  if (a.host.empty()) return false;
  for (char c : a.host)
    if (c == ' ' || c == '\t' || c == '/' || c == '[' || c == ']') return false;
  uint64_t p = 0;
  if (!parseNumber(port, 1, 65535, &p)) return false;
  a.port = static_cast<uint16_t>(p);
  *out = std::move(a);
  return true;
}

std::optional<PeerSettings> parsePeerSettings(std::string_view toml_text, std::string_view who,
                                              ErrorBuf err) {
  std::optional<toml::table> table = parseConfig(toml_text, err);
  if (!table) return std::nullopt;
  if (!onlyKnownKeys(
          *table,
          {"self_id", "listen", "peers", "reconnect_ms", "heartbeat_ms", "max_message_bytes"}, who,
          err))
    return std::nullopt;

  PeerSettings s;
  const toml::node* self = table->get("self_id");
  std::optional<int64_t> self_id = self != nullptr ? self->value_exact<int64_t>() : std::nullopt;
  if (self == nullptr) {
    fail(who, err, "'self_id' is required (this server's id)");
    return std::nullopt;
  }
  if (!self_id || *self_id < 1) {
    fail(who, err, "'self_id' must be a positive integer");
    return std::nullopt;
  }
  s.self_id = static_cast<uint64_t>(*self_id);

  const toml::node* listen = table->get("listen");
  if (listen == nullptr) {
    fail(who, err, "'listen' is required (this server's peer address, e.g. \"127.0.0.1:2888\")");
    return std::nullopt;
  }
  if (!listen->is_string() || !parsePeerAddress(listen->value_or(std::string()), &s.listen)) {
    fail(who, err, "'listen' must be a string \"host:port\" such as \"127.0.0.1:2888\"");
    return std::nullopt;
  }

  const toml::node* peers = table->get("peers");
  if (peers == nullptr) {
    fail(who, err, "'peers' is required (an array of \"id=host:port\", every other member)");
    return std::nullopt;
  }
  const toml::array* list = peers->as_array();
  if (list == nullptr) {
    fail(who, err, "'peers' must be an array of strings \"id=host:port\"");
    return std::nullopt;
  }
  std::set<uint64_t> ids;
  for (size_t i = 0; i < list->size(); ++i) {
    const toml::node& entry = *list->get(i);
    std::string where = "'peers' entry " + std::to_string(i + 1);
    std::optional<std::string> text = entry.value_exact<std::string>();
    if (!text) {
      fail(who, err, where + " must be a string \"id=host:port\"");
      return std::nullopt;
    }
    PeerMember m;
    size_t eq = text->find('=');
    uint64_t id = 0;
    if (eq == std::string::npos ||
        !parseNumber(std::string_view(*text).substr(0, eq), 1, INT64_MAX, &id) ||
        !parsePeerAddress(std::string_view(*text).substr(eq + 1), &m.address) ||
        m.address.host == "*") {
      fail(who, err, where + " \"" + *text + "\" is not of the form \"id=host:port\"");
      return std::nullopt;
    }
    m.id = id;
    if (m.id == s.self_id) {
      fail(who, err,
           where + " \"" + *text + "\": id " + std::to_string(id) +
               " is self_id; list only the other members");
      return std::nullopt;
    }
    if (!ids.insert(m.id).second) {
      fail(who, err, where + " \"" + *text + "\": id " + std::to_string(id) + " is listed twice");
      return std::nullopt;
    }
    s.peers.push_back(std::move(m));
  }

  if (!readInt(*table, "reconnect_ms", 1, 60'000, s.reconnect_ms, who, err)) return std::nullopt;
  if (!readInt(*table, "heartbeat_ms", 0, 600'000, s.heartbeat_ms, who, err)) return std::nullopt;
  int64_t max_bytes = static_cast<int64_t>(s.max_message_bytes);
  if (!readInt(*table, "max_message_bytes", 1, int64_t{1} << 40, max_bytes, who, err))
    return std::nullopt;
  s.max_message_bytes = static_cast<uint64_t>(max_bytes);
  return s;
}

}  // namespace corral::plugins
