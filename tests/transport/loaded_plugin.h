// Loads one plugin .so with dlopen and its corral_plugin_v1 entry, without the kernel's
// plugin registry, so transport tests exercise the shared library exactly as built.
#pragma once

#include <corral/client_transport.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace corral::testing {

// A host API whose log lines the test can inspect.
class RecordingHost {
 public:
  explicit RecordingHost(uint64_t max_request_bytes);
  const corral_host_api* api() const { return &api_; }
  std::vector<std::string> lines();
  bool hasLineContaining(const std::string& needle);

 private:
  static void logThunk(void* ctx, corral_log_level, const char* plugin, const char* msg,
                       size_t len);
  corral_host_api api_{};
  std::mutex mu_;
  std::vector<std::string> lines_;
};

// CORRAL_BUILD_FINGERPRINT as the server's loader computes it. plugin_abi.h reads
// _GLIBCXX_USE_CXX11_ABI when it is first included, so the value depends on whether a C++
// standard header came first; this is computed in a file that, like the loader and the
// plugins, includes the corral headers first.
const char* loaderFingerprint();

class LoadedPlugin {
 public:
  // Loads $CORRAL_PLUGIN_DIR/<file_name>; ok() tells whether it worked, error() why not.
  explicit LoadedPlugin(const std::string& file_name);
  ~LoadedPlugin();
  bool ok() const { return desc_ != nullptr; }
  const std::string& error() const { return error_; }
  const corral_plugin_descriptor* descriptor() const { return desc_; }

  struct Destroyer {
    corral_plugin_destroy_fn destroy;
    void operator()(ClientTransport* t) const {
      if (t != nullptr) destroy(t);
    }
  };
  using TransportPtr = std::unique_ptr<ClientTransport, Destroyer>;
  // create() with the given TOML; on failure returns null and puts the reason in err.
  TransportPtr createTransport(const std::string& toml, const corral_host_api* host,
                               std::string* err) const;

 private:
  void* handle_ = nullptr;
  const corral_plugin_descriptor* desc_ = nullptr;
  std::string error_;
};

}  // namespace corral::testing
