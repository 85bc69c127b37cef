#include "plugins/plugin_registry.h"

#include <dlfcn.h>
#include <boost/dll/shared_library.hpp>

#include <cstring>
#include <filesystem>
#include <memory>
#include <vector>

namespace corral::kernel {
namespace {

const char* kindName(corral_plugin_kind kind) {
  switch (kind) {
    case CORRAL_PLUGIN_STORAGE:
      return "storage";
    case CORRAL_PLUGIN_CLIENT_TRANSPORT:
      return "client";
    case CORRAL_PLUGIN_PEER_TRANSPORT:
      return "peer";
    case CORRAL_PLUGIN_AUTH:
      return "auth";
  }
  return "unknown";
}

std::string version(uint32_t major, uint32_t minor) {
  return std::to_string(major) + "." + std::to_string(minor);
}

}  // namespace

struct PluginRegistry::Impl {
  struct Instance {
    const corral_plugin_descriptor* descriptor;
    void* object;
  };
  std::string dir;
  const corral_host_api* host;
  // Libraries outlive the instances made from them: instances are destroyed first.
  std::vector<std::shared_ptr<boost::dll::shared_library>> libraries;
  std::vector<Instance> instances;

  void* create(corral_plugin_kind kind, const std::string& name, const std::string& config,
               std::string* error) {
    const std::string category = kindName(kind);
    const std::string path = libraryPath(dir, category, name);
    const std::string who = category + " plugin '" + name + "'";
    if (!std::filesystem::exists(path)) {
      *error = who + ": " + path + " does not exist (plugin_dir is " + dir + ")";
      return nullptr;
    }
    auto lib = std::make_shared<boost::dll::shared_library>();
    try {
      boost::dll::fs::error_code ec;
      lib->load(path, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local, ec);
      if (ec) {
        // Boost's error_code says only "Bad file descriptor"; the loader's own reason
        // (missing dependency, not an ELF file, unresolved symbol) is still in dlerror().
        const char* why = ::dlerror();
        *error = who + ": cannot load " + path + ": " + (why ? why : ec.message());
        return nullptr;
      }
      if (!lib->has(CORRAL_PLUGIN_ENTRY_SYMBOL)) {
        *error = who + ": " + path + " has no entry symbol " CORRAL_PLUGIN_ENTRY_SYMBOL;
        return nullptr;
      }
      auto entry = lib->get<const corral_plugin_descriptor*()>(CORRAL_PLUGIN_ENTRY_SYMBOL);
      const corral_plugin_descriptor* d = entry();
      if (d == nullptr) {
        *error = who + ": " + path + ": entry point returned no descriptor";
        return nullptr;
      }
      if (d->abi_major != CORRAL_PLUGIN_ABI_MAJOR) {
        *error = who + ": " + path + ": plugin ABI " + version(d->abi_major, d->abi_minor) +
                 ", this server supports " +
                 version(CORRAL_PLUGIN_ABI_MAJOR, CORRAL_PLUGIN_ABI_MINOR);
        return nullptr;
      }
      if (d->struct_size < offsetof(corral_plugin_descriptor, destroy) + sizeof(d->destroy)) {
        *error = who + ": " + path + ": descriptor too small (" + std::to_string(d->struct_size) +
                 " bytes)";
        return nullptr;
      }
      if (d->build_fingerprint == nullptr ||
          std::strcmp(d->build_fingerprint, CORRAL_BUILD_FINGERPRINT) != 0) {
        *error = who + ": " + path + ": build fingerprint mismatch: plugin \"" +
                 (d->build_fingerprint ? d->build_fingerprint : "") + "\", server \"" +
                 CORRAL_BUILD_FINGERPRINT + "\"";
        return nullptr;
      }
      if (d->kind != kind) {
        *error = who + ": " + path + " is a " + kindName(d->kind) + " plugin, expected " + category;
        return nullptr;
      }
      if (d->create == nullptr || d->destroy == nullptr) {
        *error = who + ": " + path + ": descriptor lacks create/destroy";
        return nullptr;
      }
      char err[512] = {0};
      void* object = nullptr;
      int rc = d->create(config.data(), config.size(), host, &object, err, sizeof(err));
      if (rc != 0 || object == nullptr) {
        *error = who + " (" + path + ", version " + (d->plugin_version ? d->plugin_version : "?") +
                 "): create failed: " + (err[0] ? err : "no reason given");
        return nullptr;
      }
      libraries.push_back(lib);
      instances.push_back({d, object});
      return object;
    } catch (const std::exception& e) {
      *error = who + ": cannot load " + path + ": " + e.what();
      return nullptr;
    }
  }
};

PluginRegistry::PluginRegistry(std::string plugin_dir, const corral_host_api* host)
    : impl_(std::make_unique<Impl>()) {
  impl_->dir = std::move(plugin_dir);
  impl_->host = host;
}

PluginRegistry::~PluginRegistry() {
  for (auto it = impl_->instances.rbegin(); it != impl_->instances.rend(); ++it)
    it->descriptor->destroy(it->object);
  impl_->instances.clear();
}

StoragePlugin* PluginRegistry::createStorage(const std::string& name, const std::string& config,
                                             std::string* error) {
  return static_cast<StoragePlugin*>(impl_->create(CORRAL_PLUGIN_STORAGE, name, config, error));
}

ClientTransport* PluginRegistry::createClientTransport(const std::string& name,
                                                       const std::string& config,
                                                       std::string* error) {
  return static_cast<ClientTransport*>(
      impl_->create(CORRAL_PLUGIN_CLIENT_TRANSPORT, name, config, error));
}

PeerTransport* PluginRegistry::createPeerTransport(const std::string& name,
                                                   const std::string& config, std::string* error) {
  return static_cast<PeerTransport*>(
      impl_->create(CORRAL_PLUGIN_PEER_TRANSPORT, name, config, error));
}

AuthProvider* PluginRegistry::createAuth(const std::string& name, const std::string& config,
                                         std::string* error) {
  return static_cast<AuthProvider*>(impl_->create(CORRAL_PLUGIN_AUTH, name, config, error));
}

std::string PluginRegistry::libraryPath(const std::string& plugin_dir, const std::string& category,
                                        const std::string& name) {
  return plugin_dir + "/libcorral_" + category + "_" + name + ".so";
}

}  // namespace corral::kernel
