// PluginRegistry: finds, checks, loads and instantiates plugins (Boost.DLL), and owns them.
//
// A plugin named NAME of category CAT lives at <plugin_dir>/libcorral_<CAT>_<NAME>.so, where
// CAT is "storage", "client" (client transport), "peer" (peer transport) or "auth".
// Every failure (missing file, missing entry symbol, ABI major mismatch, fingerprint mismatch,
// wrong kind, create() error, null instance) returns nullptr and one line in *error naming the
// plugin, its path and, for version problems, both versions ("got 2.0, expected 1.0").
//
// Lifetime: instances are destroyed in reverse creation order when the registry is
// destroyed; libraries are never unloaded while instances exist.
// Thread-safety: use from one thread (start-up / shutdown).
#pragma once

#include <corral/auth.h>
#include <corral/client_transport.h>
#include <corral/peer_transport.h>
#include <corral/plugin_abi.h>
#include <corral/storage.h>

#include <memory>
#include <string>

namespace corral::kernel {

class PluginRegistry {
 public:
  // host must outlive the registry.
  PluginRegistry(std::string plugin_dir, const corral_host_api* host);
  ~PluginRegistry();
  PluginRegistry(const PluginRegistry&) = delete;
  PluginRegistry& operator=(const PluginRegistry&) = delete;

  StoragePlugin* createStorage(const std::string& name, const std::string& config_toml,
                               std::string* error);
  ClientTransport* createClientTransport(const std::string& name, const std::string& config_toml,
                                         std::string* error);
  // The host appends self_id, listen and peers (from [ensemble]) to the plugin's table.
  PeerTransport* createPeerTransport(const std::string& name, const std::string& config_toml,
                                     std::string* error);
  AuthProvider* createAuth(const std::string& name, const std::string& config_toml,
                           std::string* error);

  // <plugin_dir>/libcorral_<category>_<name>.so
  static std::string libraryPath(const std::string& plugin_dir, const std::string& category,
                                 const std::string& name);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace corral::kernel
