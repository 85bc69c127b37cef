// A PluginRegistry over the real plugin folder or the broken fixtures' folder.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <map>
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

// Collects log records (all, or the first stop_after of them).
struct CollectLog : LogVisitor {
  std::map<uint64_t, std::string> records;
  size_t stop_after = SIZE_MAX;
  bool onRecord(uint64_t zxid, ByteView r) noexcept override {
    records[zxid] = std::string(r.str());
    return records.size() < stop_after;
  }
};

// Keeps the snapshot a storage hands over.
struct KeepSnapshot : SnapshotVisitor {
  uint64_t zxid = 0;
  std::string data;
  void onSnapshot(uint64_t z, ByteView d) noexcept override {
    zxid = z;
    data = std::string(d.str());
  }
};

}  // namespace corral::testing
