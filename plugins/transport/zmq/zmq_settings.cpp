#include "zmq_settings.h"

#include "common/plugin_config.h"

namespace corral::zmqtransport {

namespace {
constexpr std::string_view kWho = "zmq transport";

bool fail(ErrorBuf err, std::string_view msg) {
  err.write(std::string(kWho) + ": " + std::string(msg));
  return false;
}

// Reads an optional integer key within [lo, hi]; false (with err written) when it is
// present but of the wrong type or out of range.
bool readInt(const toml::table& t, std::string_view key, int64_t lo, int64_t hi, int64_t& out,
             ErrorBuf err) {
  const toml::node* node = t.get(key);
  if (node == nullptr) return true;
  std::optional<int64_t> v = node->value_exact<int64_t>();
  if (!v || *v < lo || *v > hi)
    return fail(err, "'" + std::string(key) + "' must be an integer from " + std::to_string(lo) +
                         " to " + std::to_string(hi));
  out = *v;
  return true;
}
}  // namespace

std::optional<Settings> parseSettings(std::string_view toml_text, ErrorBuf err) {
  std::optional<toml::table> table = plugins::parseConfig(toml_text, err);
  if (!table) return std::nullopt;
  if (!plugins::onlyKnownKeys(*table, {"listen", "io_threads", "idle_timeout_ms"}, kWho, err))
    return std::nullopt;

  Settings s;
  const toml::node* listen = table->get("listen");
  if (listen == nullptr) {
    fail(err, "'listen' is required (e.g. \"tcp://127.0.0.1:2281\")");
    return std::nullopt;
  }
  if (!listen->is_string() || listen->value_or(std::string()).empty()) {
    fail(err, "'listen' must be a non-empty string such as \"tcp://127.0.0.1:2281\"");
    return std::nullopt;
  }
  s.listen = listen->value_or(std::string());

  int64_t io_threads = s.io_threads;
  if (!readInt(*table, "io_threads", 1, 64, io_threads, err)) return std::nullopt;
  s.io_threads = static_cast<int>(io_threads);
  // Upper bound: one day; anything larger is surely a unit mistake.
  if (!readInt(*table, "idle_timeout_ms", 0, 86'400'000, s.idle_timeout_ms, err))
    return std::nullopt;
  return s;
}

}  // namespace corral::zmqtransport
