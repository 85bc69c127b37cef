#include "loaded_plugin.h"

#include <dlfcn.h>

#include <cstdlib>

namespace corral::testing {

const char* loaderFingerprint() {
  return CORRAL_BUILD_FINGERPRINT;
}

RecordingHost::RecordingHost(uint64_t max_request_bytes) {
  api_.struct_size = sizeof(api_);
  api_.host_ctx = this;
  api_.log = &RecordingHost::logThunk;
  api_.max_request_bytes = max_request_bytes;
  api_.data_dir = "/nonexistent";
}

void RecordingHost::logThunk(void* ctx, corral_log_level, const char* plugin, const char* msg,
                             size_t len) {
  auto* self = static_cast<RecordingHost*>(ctx);
  std::lock_guard<std::mutex> lock(self->mu_);
  self->lines_.push_back(std::string(plugin) + ": " + std::string(msg, len));
}

std::vector<std::string> RecordingHost::lines() {
  std::lock_guard<std::mutex> lock(mu_);
  return lines_;
}

bool RecordingHost::hasLineContaining(const std::string& needle) {
  for (const std::string& line : lines())
    if (line.find(needle) != std::string::npos) return true;
  return false;
}

LoadedPlugin::LoadedPlugin(const std::string& file_name) {
  const char* dir = std::getenv("CORRAL_PLUGIN_DIR");
  if (dir == nullptr) {
    error_ = "CORRAL_PLUGIN_DIR is not set (run the test through ctest)";
    return;
  }
  std::string path = std::string(dir) + "/" + file_name;
  handle_ = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle_ == nullptr) {
    error_ = std::string("dlopen ") + path + ": " + dlerror();
    return;
  }
  auto entry = reinterpret_cast<corral_plugin_entry_fn>(dlsym(handle_, CORRAL_PLUGIN_ENTRY_SYMBOL));
  if (entry == nullptr) {
    error_ = path + " has no " CORRAL_PLUGIN_ENTRY_SYMBOL;
    return;
  }
  desc_ = entry();
  if (desc_ == nullptr) error_ = path + ": entry returned no descriptor";
}

LoadedPlugin::~LoadedPlugin() {
  if (handle_ != nullptr) dlclose(handle_);
}

LoadedPlugin::TransportPtr LoadedPlugin::createTransport(const std::string& toml,
                                                         const corral_host_api* host,
                                                         std::string* err) const {
  char buf[512] = {0};
  void* instance = nullptr;
  int rc = desc_->create(toml.data(), toml.size(), host, &instance, buf, sizeof(buf));
  if (rc != 0 || instance == nullptr) {
    if (err != nullptr) *err = buf;
    return TransportPtr(nullptr, Destroyer{desc_->destroy});
  }
  return TransportPtr(static_cast<ClientTransport*>(instance), Destroyer{desc_->destroy});
}

}  // namespace corral::testing
