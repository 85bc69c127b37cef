/*
 * The Corral plugin ABI: the one C contract between corrald and a plugin shared library.
 *
 * A plugin library exports exactly one symbol, CORRAL_PLUGIN_ENTRY_SYMBOL ("corral_plugin_v1"),
 * a function returning a pointer to a static corral_plugin_descriptor. The host checks
 * the descriptor before it calls anything else:
 *   - abi_major must equal the host's CORRAL_PLUGIN_ABI_MAJOR;
 *   - abi_minor may be lower than the host's: the host then uses only the fields that
 *     struct_size covers (fields are only ever appended);
 *   - build_fingerprint must equal the host's, because the instance returned by create()
 *     is a C++ object (see storage.h, client_transport.h, auth.h) whose vtable layout and
 *     standard-library types depend on the compiler and its ABI settings.
 * A mismatch is a start-up error naming the plugin, its path and both versions.
 *
 * Thread-safety: the descriptor is immutable. create() and destroy() are called from the
 * host's start-up/shutdown thread only.
 *
 * When this file changes, CORRAL_PLUGIN_ABI_MAJOR or _MINOR must change too; a test hashes
 * this file and fails when the hash changed while the version did not.
 */
#ifndef CORRAL_PLUGIN_ABI_H
#define CORRAL_PLUGIN_ABI_H

#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
/* Any standard C++ header defines _GLIBCXX_USE_CXX11_ABI, which the fingerprint reads: the
   fingerprint must not depend on what the includer happened to include first. */
#include <cstddef>
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define CORRAL_PLUGIN_ABI_MAJOR 1
#define CORRAL_PLUGIN_ABI_MINOR 2
#define CORRAL_PLUGIN_ENTRY_SYMBOL "corral_plugin_v1"

#define CORRAL_STR2_(x) #x
#define CORRAL_STR_(x) CORRAL_STR2_(x)
#if defined(__clang__)
#define CORRAL_COMPILER_ID_ "clang-" CORRAL_STR_(__clang_major__)
#elif defined(__GNUC__)
#define CORRAL_COMPILER_ID_ "gcc-" CORRAL_STR_(__GNUC__)
#else
#define CORRAL_COMPILER_ID_ "cc-unknown"
#endif
#if defined(_GLIBCXX_USE_CXX11_ABI)
#define CORRAL_CXXABI_ID_ "cxx11abi-" CORRAL_STR_(_GLIBCXX_USE_CXX11_ABI)
#else
#define CORRAL_CXXABI_ID_ "cxx11abi-unknown"
#endif
/* Identifies the C++ ABI a plugin was built with; host and plugin must agree exactly. */
#define CORRAL_BUILD_FINGERPRINT                                                   \
  "corral-abi-" CORRAL_STR_(CORRAL_PLUGIN_ABI_MAJOR) "." CORRAL_STR_(              \
      CORRAL_PLUGIN_ABI_MINOR) ";" CORRAL_COMPILER_ID_ ";" CORRAL_CXXABI_ID_

typedef enum corral_plugin_kind {
  CORRAL_PLUGIN_STORAGE = 1,          /* instance is a corral::StoragePlugin* */
  CORRAL_PLUGIN_CLIENT_TRANSPORT = 2, /* instance is a corral::ClientTransport* */
  CORRAL_PLUGIN_PEER_TRANSPORT = 3,   /* instance is a corral::PeerTransport* (ABI 1.2) */
  CORRAL_PLUGIN_AUTH = 4              /* instance is a corral::AuthProvider* */
} corral_plugin_kind;

typedef enum corral_log_level {
  CORRAL_LOG_DEBUG = 0,
  CORRAL_LOG_INFO = 1,
  CORRAL_LOG_WARN = 2,
  CORRAL_LOG_ERROR = 3
} corral_log_level;

/*
 * What the host offers every plugin. Owned by the host; valid until destroy() returns.
 * log() may be called from any thread.
 */
typedef struct corral_host_api {
  uint32_t struct_size;
  void* host_ctx;
  void (*log)(void* host_ctx, corral_log_level level, const char* plugin_name, const char* msg,
              size_t msg_len);
  /* The server's max_request_bytes: transports reject larger frames before decoding. */
  uint64_t max_request_bytes;
  /* Absolute path of the server's data_dir (NUL-terminated). */
  const char* data_dir;
  /*
   * Added in ABI 1.1 (check struct_size before use). Asks the kernel about the server's
   * state, as text: "stats" (key value lines: znode_count, watch_count, ...), "watches",
   * "sessions". Writes at most cap bytes into buf and returns the answer's full length (ask
   * again with a larger buffer if it did not fit); 0 for an unknown question or when the
   * server did not answer in time. Blocks briefly: call it from a plugin's own thread, never
   * from inside a sink or listener callback.
   */
  size_t (*query)(void* host_ctx, const char* question, char* buf, size_t cap);
} corral_host_api;

/*
 * Result of create(): 0 on success; otherwise non-zero, with a one-line, NUL-terminated
 * reason written into err_buf (at most err_len bytes including the NUL). A config error
 * must name the offending key.
 */
typedef int (*corral_plugin_create_fn)(const char* config_toml, size_t config_len,
                                       const corral_host_api* host, void** out_instance,
                                       char* err_buf, size_t err_len);
typedef void (*corral_plugin_destroy_fn)(void* instance);

typedef struct corral_plugin_descriptor {
  uint32_t abi_major;
  uint32_t abi_minor;
  uint32_t struct_size; /* sizeof(corral_plugin_descriptor) as the plugin was built */
  corral_plugin_kind kind;
  const char* name;              /* e.g. "memory", "zmq", "digest" */
  const char* plugin_version;    /* the plugin's own version, free form */
  const char* build_fingerprint; /* CORRAL_BUILD_FINGERPRINT */
  corral_plugin_create_fn create;
  corral_plugin_destroy_fn destroy;
} corral_plugin_descriptor;

typedef const corral_plugin_descriptor* (*corral_plugin_entry_fn)(void);

#ifdef __cplusplus
}
#endif

#endif /* CORRAL_PLUGIN_ABI_H */
