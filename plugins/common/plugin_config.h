// Helpers for plugins that parse their own TOML table (the host passes it as text).
#pragma once

#include <toml++/toml.h>

#include <corral/plugin.h>

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

namespace corral::plugins {

// Parses the table; on a syntax error writes "line L: reason" into err and returns nullopt.
inline std::optional<toml::table> parseConfig(std::string_view text, ErrorBuf err) {
  try {
    return toml::parse(text);
  } catch (const toml::parse_error& e) {
    err.write("config line " + std::to_string(e.source().begin.line) + ": " +
              std::string(e.description()));
    return std::nullopt;
  }
}

// Refuses keys outside `known`, naming the first unknown one.
inline bool onlyKnownKeys(const toml::table& t, std::initializer_list<std::string_view> known,
                          std::string_view plugin, ErrorBuf err) {
  for (const auto& [key, value] : t) {
    bool ok = false;
    for (std::string_view k : known) ok |= key.str() == k;
    if (!ok) {
      err.write(std::string(plugin) + ": unknown config key '" + std::string(key.str()) + "'");
      return false;
    }
  }
  return true;
}

// Reads an optional integer key within [lo, hi] into out; false (with "<plugin>: 'key' must
// be an integer from lo to hi" in err) when it is present but of the wrong type or range.
inline bool readInt(const toml::table& t, std::string_view key, int64_t lo, int64_t hi,
                    int64_t& out, std::string_view plugin, ErrorBuf err) {
  const toml::node* node = t.get(key);
  if (node == nullptr) return true;
  std::optional<int64_t> v = node->value_exact<int64_t>();
  if (!v || *v < lo || *v > hi) {
    err.write(std::string(plugin) + ": '" + std::string(key) + "' must be an integer from " +
              std::to_string(lo) + " to " + std::to_string(hi));
    return false;
  }
  out = *v;
  return true;
}

}  // namespace corral::plugins
