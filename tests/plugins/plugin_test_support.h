// A PluginRegistry over the real plugin folder or the broken fixtures' folder.
#pragma once

#include <cstdlib>
#include <string>

#include "plugins/plugin_registry.h"

namespace corral::testing {

inline std::string envDir(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}

inline const corral_host_api* testHost() {
  static corral_host_api host = [] {
    corral_host_api h{};
    h.struct_size = sizeof(h);
    h.max_request_bytes = 1048575;
    h.data_dir = "/tmp";
    return h;
  }();
  return &host;
}

}  // namespace corral::testing
