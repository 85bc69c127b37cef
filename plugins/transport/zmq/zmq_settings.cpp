#include "zmq_settings.h"

#include "common/plugin_config.h"

namespace corral::zmqtransport {

namespace {
constexpr std::string_view kWho = "zmq transport";

bool fail(ErrorBuf err, std::string_view msg) {
  err.write(std::string(kWho) + ": " + std::string(msg));
  return false;
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
  if (!plugins::readInt(*table, "io_threads", 1, 64, io_threads, kWho, err)) return std::nullopt;
  s.io_threads = static_cast<int>(io_threads);
  // Upper bound: one day; anything larger is surely a unit mistake.
  if (!plugins::readInt(*table, "idle_timeout_ms", 0, 86'400'000, s.idle_timeout_ms, kWho, err))
    return std::nullopt;
  return s;
}

}  // namespace corral::zmqtransport
