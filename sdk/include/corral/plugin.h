// C++ side of the plugin SDK: the views and status types that cross the plugin boundary,
// and CORRAL_DEFINE_PLUGIN, which turns a C++ factory into the C entry point of
// plugin_abi.h.
//
// Rules for everything that crosses the boundary (Boost.DLL's own warnings):
//   - every virtual method is noexcept and reports failure as a status value;
//   - only views ({pointer, size}) and POD structs cross, never std::string, containers,
//     std::function, shared_ptr or exceptions;
//   - whoever creates an object destroys it (the plugin's destroy() for instances).
#pragma once

#include <corral/plugin_abi.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string_view>

namespace corral {

// A borrowed byte range. Valid only for the duration of the call it is passed to.
struct ByteView {
  const uint8_t* data = nullptr;
  size_t size = 0;

  ByteView() = default;
  ByteView(const uint8_t* d, size_t n) : data(d), size(n) {}
  ByteView(const char* d, size_t n) : data(reinterpret_cast<const uint8_t*>(d)), size(n) {}
  std::string_view str() const { return {reinterpret_cast<const char*>(data), size}; }
};

// A caller-owned buffer for a one-line error message. write() truncates and always
// NUL-terminates.
struct ErrorBuf {
  char* data = nullptr;
  size_t cap = 0;

  void write(std::string_view msg) const noexcept {
    if (data == nullptr || cap == 0) return;
    size_t n = msg.size() < cap - 1 ? msg.size() : cap - 1;
    std::memcpy(data, msg.data(), n);
    data[n] = '\0';
  }
};

// Logs through the host; safe from any thread.
inline void hostLog(const corral_host_api* host, corral_log_level level, const char* plugin,
                    std::string_view msg) noexcept {
  if (host != nullptr && host->log != nullptr)
    host->log(host->host_ctx, level, plugin, msg.data(), msg.size());
}

}  // namespace corral

// Defines the plugin's entry point. FACTORY is an expression callable as
//   FACTORY(std::string_view config_toml, const corral_host_api* host, corral::ErrorBuf err)
// returning a pointer to a new instance of the interface that KIND names (or nullptr after
// writing the reason into err). Exceptions thrown by the factory become a create() error;
// destroy() deletes through the interface's virtual destructor.
#define CORRAL_DEFINE_PLUGIN(KIND, INTERFACE, NAME, VERSION, FACTORY)                           \
  namespace {                                                                                   \
  int corralPluginCreate_(const char* cfg, size_t len, const corral_host_api* host, void** out, \
                          char* err, size_t err_len) {                                          \
    corral::ErrorBuf eb{err, err_len};                                                          \
    *out = nullptr;                                                                             \
    try {                                                                                       \
      INTERFACE* inst = (FACTORY)(std::string_view(cfg ? cfg : "", len), host, eb);             \
      if (inst == nullptr) {                                                                    \
        if (err_len > 0 && err[0] == '\0') eb.write("plugin returned no instance");             \
        return 1;                                                                               \
      }                                                                                         \
      *out = static_cast<void*>(inst);                                                          \
      return 0;                                                                                 \
    } catch (const std::exception& e) {                                                         \
      eb.write(e.what());                                                                       \
      return 1;                                                                                 \
    } catch (...) {                                                                             \
      eb.write("unknown exception in create");                                                  \
      return 1;                                                                                 \
    }                                                                                           \
  }                                                                                             \
  void corralPluginDestroy_(void* inst) {                                                       \
    delete static_cast<INTERFACE*>(inst);                                                       \
  }                                                                                             \
  const corral_plugin_descriptor corralPluginDescriptor_ = {CORRAL_PLUGIN_ABI_MAJOR,            \
                                                            CORRAL_PLUGIN_ABI_MINOR,            \
                                                            sizeof(corral_plugin_descriptor),   \
                                                            KIND,                               \
                                                            NAME,                               \
                                                            VERSION,                            \
                                                            CORRAL_BUILD_FINGERPRINT,           \
                                                            &corralPluginCreate_,               \
                                                            &corralPluginDestroy_};             \
  }                                                                                             \
  extern "C" __attribute__((visibility("default"))) const corral_plugin_descriptor*             \
  corral_plugin_v1(void) {                                                                      \
    return &corralPluginDescriptor_;                                                            \
  }
