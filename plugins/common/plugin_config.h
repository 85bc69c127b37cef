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

}  // namespace corral::plugins
