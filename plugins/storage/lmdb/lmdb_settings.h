// The lmdb storage plugin's [storage.lmdb] table.
#pragma once

#include <corral/plugin.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace corral::lmdb {

struct Settings {
  std::string path;             // the LMDB environment's folder; default <data_dir>/lmdb
  uint64_t map_size_mb = 4096;  // upper bound of the store's size (LMDB's map size)
  bool fsync = true;            // sync = "fsync" (default) or "none" (tests only: not durable)
  uint32_t snapshots_retained = 3;
  uint64_t journal_segment_mb = 64;  // journal files are written out (as zeros) this big
};

// Parses the table; nullopt with the offending key named in err.
std::optional<Settings> parseSettings(std::string_view toml, const char* data_dir, ErrorBuf err);

}  // namespace corral::lmdb
