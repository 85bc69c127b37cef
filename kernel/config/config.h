// ServerConfig: corrald's TOML configuration (DESIGN.md "Configuration shape"), loaded,
// overridden by --set and validated. Every problem is one line naming the file, the line
// and the key, e.g. "corrald.toml:7: server.tick_ms: expected a positive integer".
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace corral::kernel {

// A plugin chosen by the config, with its own table re-serialised as TOML text.
struct PluginChoice {
  std::string name;
  std::string config_toml;
};

struct EnsembleMember {
  int64_t id = 0;
  std::string address;  // host:port of its peer transport
};

struct ServerConfig {
  std::string config_path;
  int64_t id = 1;
  std::string data_dir;  // absolute
  int64_t tick_ms = 200;
  int64_t init_limit = 10;
  int64_t sync_limit = 5;
  int64_t min_session_timeout_ms = 0;  // defaults: 2 and 20 ticks
  int64_t max_session_timeout_ms = 0;
  int64_t max_request_bytes = 1048575;
  std::string plugin_dir;           // absolute
  int64_t snapshot_every = 100000;  // txns between snapshots
  std::vector<EnsembleMember> voters;
  std::vector<EnsembleMember> observers;
  PluginChoice storage;
  std::vector<PluginChoice> client_transports;
  PluginChoice peer;
  std::vector<PluginChoice> auth_providers;
  std::string super_digest;

  bool standalone() const { return voters.empty(); }
};

// Loads `path`, applies the --set overrides ("table.key=value"; value parsed as TOML, else
// taken as a string), validates, resolves relative paths against the config file's folder
// and an empty plugin_dir to <exe_dir>/../lib/corral/plugins.
bool loadConfig(const std::string& path, const std::vector<std::string>& sets,
                const std::string& exe_dir, ServerConfig* out, std::string* error);

}  // namespace corral::kernel
