#include "lmdb_settings.h"

#include <filesystem>

#include "common/plugin_config.h"

namespace corral::lmdb {

std::optional<Settings> parseSettings(std::string_view toml, const char* data_dir, ErrorBuf err) {
  auto table = corral::plugins::parseConfig(toml, err);
  if (!table ||
      !corral::plugins::onlyKnownKeys(
          *table, {"path", "map_size_mb", "sync", "snapshots_retained", "journal_segment_mb"},
          "lmdb storage", err))
    return std::nullopt;
  Settings s;
  std::string base = data_dir != nullptr ? data_dir : ".";
  s.path = base + "/lmdb";
  if (auto v = (*table)["path"]; v) {
    if (!v.is_string() || v.value_or(std::string()).empty()) {
      err.write("lmdb storage: 'path' must be a non-empty string");
      return std::nullopt;
    }
    std::filesystem::path p(v.value_or(std::string()));
    s.path = (p.is_absolute() ? p : std::filesystem::path(base) / p).string();
  }
  if (auto v = (*table)["map_size_mb"]; v) {
    int64_t mb = v.value_or(int64_t{0});
    if (!v.is_integer() || mb < 1 || mb > (int64_t{1} << 24)) {
      err.write("lmdb storage: 'map_size_mb' must be an integer from 1 to 16777216");
      return std::nullopt;
    }
    s.map_size_mb = static_cast<uint64_t>(mb);
  }
  if (auto v = (*table)["sync"]; v) {
    std::string mode = v.value_or(std::string());
    if (!v.is_string() || (mode != "fsync" && mode != "none")) {
      err.write("lmdb storage: 'sync' must be \"fsync\" or \"none\"");
      return std::nullopt;
    }
    s.fsync = mode == "fsync";
  }
  if (auto v = (*table)["snapshots_retained"]; v) {
    int64_t n = v.value_or(int64_t{0});
    if (!v.is_integer() || n < 1 || n > 1000) {
      err.write("lmdb storage: 'snapshots_retained' must be an integer from 1 to 1000");
      return std::nullopt;
    }
    s.snapshots_retained = static_cast<uint32_t>(n);
  }
  if (auto v = (*table)["journal_segment_mb"]; v) {
    int64_t mb = v.value_or(int64_t{0});
    if (!v.is_integer() || mb < 1 || mb > 4096) {
      err.write("lmdb storage: 'journal_segment_mb' must be an integer from 1 to 4096");
      return std::nullopt;
    }
    s.journal_segment_mb = static_cast<uint64_t>(mb);
  }
  return s;
}

}  // namespace corral::lmdb
