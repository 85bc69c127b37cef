#include "server_main.h"

#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <chrono>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>

#include "driver/driver.h"
#include "plugins/plugin_registry.h"
#include "state/auth_registry.h"

namespace corral::tools {
namespace {

spdlog::level::level_enum toSpdlog(corral_log_level level) {
  switch (level) {
    case CORRAL_LOG_DEBUG:
      return spdlog::level::debug;
    case CORRAL_LOG_INFO:
      return spdlog::level::info;
    case CORRAL_LOG_WARN:
      return spdlog::level::warn;
    case CORRAL_LOG_ERROR:
      return spdlog::level::err;
  }
  return spdlog::level::info;
}

// Plugins log through the host API, from any thread (spdlog loggers are thread-safe).
void hostLogCallback(void*, corral_log_level level, const char* plugin, const char* msg,
                     size_t len) {
  spdlog::log(toSpdlog(level), "[{}] {}", plugin ? plugin : "plugin", std::string_view(msg, len));
}

int fail(const std::string& why) {
  std::fprintf(stderr, "corrald: %s\n", why.c_str());
  std::fflush(stderr);
  return 1;
}

}  // namespace

int runServer(const kernel::ServerConfig& config) {
  auto logger = spdlog::stderr_color_mt("corrald");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
  spdlog::flush_on(spdlog::level::info);

  // Signals are taken synchronously by this thread; every thread started below inherits
  // the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  std::error_code ec;
  std::filesystem::create_directories(config.data_dir, ec);
  if (ec) return fail("cannot create data_dir " + config.data_dir + ": " + ec.message());

  corral_host_api host{};
  host.struct_size = sizeof(host);
  host.log = &hostLogCallback;
  host.max_request_bytes = static_cast<uint64_t>(config.max_request_bytes);
  host.data_dir = config.data_dir.c_str();

  std::string error;
  auto registry = std::make_unique<kernel::PluginRegistry>(config.plugin_dir, &host);
  kernel::AuthRegistry auth;
  auth.setSuperDigest(config.super_digest);
  for (const auto& p : config.auth_providers) {
    AuthProvider* provider = registry->createAuth(p.name, p.config_toml, &error);
    if (provider == nullptr) return fail(error);
    if (!auth.add(provider))
      return fail("auth plugin '" + p.name + "' provides scheme '" + provider->scheme() +
                  "', which another provider already has");
  }
  StoragePlugin* storage =
      registry->createStorage(config.storage.name, config.storage.config_toml, &error);
  if (storage == nullptr) return fail(error);
  char err[512] = {0};
  auto opening = std::chrono::steady_clock::now();
  if (storage->open(ErrorBuf{err, sizeof(err)}) != StorageCode::kOk)
    return fail("storage plugin '" + config.storage.name + "' cannot open: " + err);
  auto opened = std::chrono::steady_clock::now();

  std::vector<std::pair<std::string, ClientTransport*>> transports;
  for (const auto& t : config.client_transports) {
    ClientTransport* transport = registry->createClientTransport(t.name, t.config_toml, &error);
    if (transport == nullptr) return fail(error);
    transports.emplace_back(t.name, transport);
  }

  // An ensemble member: ZAB's membership and ticks, and the peer transport, which gets its own
  // table from [peer.<plugin>] plus this server's id, address and the other members.
  PeerTransport* peer = nullptr;
  std::optional<zab::ZabOptions> ensemble;
  if (!config.standalone()) {
    zab::ZabOptions z;
    z.self_id = config.id;
    z.tick_ms = config.tick_ms;
    z.init_limit = config.init_limit;
    z.sync_limit = config.sync_limit;
    std::string listen;
    std::string peers;
    for (const auto* list : {&config.voters, &config.observers}) {
      for (const auto& m : *list) {
        (list == &config.voters ? z.voters : z.observers).push_back(m.id);
        if (m.id == config.id) {
          listen = m.address;
        } else {
          peers += (peers.empty() ? "\"" : ", \"") + std::to_string(m.id) + "=" + m.address + "\"";
        }
      }
    }
    std::string peer_toml = "self_id = " + std::to_string(config.id) + "\nlisten = \"" + listen +
                            "\"\npeers = [" + peers + "]\n" + config.peer.config_toml;
    peer = registry->createPeerTransport(config.peer.name, peer_toml, &error);
    if (peer == nullptr) return fail(error);
    ensemble = z;
  }

  kernel::KernelOptions options;
  options.ensemble = ensemble;
  options.server_id = config.id;
  options.min_session_timeout_ms = static_cast<int32_t>(config.min_session_timeout_ms);
  options.max_session_timeout_ms = static_cast<int32_t>(config.max_session_timeout_ms);
  options.max_request_bytes = static_cast<uint64_t>(config.max_request_bytes);
  options.snapshot_every = config.snapshot_every;
  options.seed = std::random_device{}() ^ (static_cast<uint64_t>(std::random_device{}()) << 32);
  kernel::Driver driver(
      options, &auth, storage, config.tick_ms,
      [](corral_log_level level, const std::string& msg) {
        spdlog::log(toSpdlog(level), "{}", msg);
      },
      config.data_dir);
  if (!driver.recover(&error)) return fail("recovery failed: " + error);
  auto ms = [](auto d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); };
  spdlog::info(
      "recovered {} znodes up to zxid {:#x}: storage opened in {} ms, state rebuilt in {} ms",
      driver.nodeCount(), driver.lastZxid(), ms(opened - opening),
      ms(std::chrono::steady_clock::now() - opened));
  // Plugins may now ask the kernel about the server's state (four-letter words).
  host.host_ctx = &driver;
  host.query = &kernel::Driver::query;

  std::vector<ClientSink*> sinks;
  for (auto& [name, transport] : transports) sinks.push_back(driver.addTransport(transport));
  PeerSink* peer_sink =
      peer != nullptr ? driver.setPeerTransport(peer, config.data_dir + "/peer-faults") : nullptr;
  driver.start();
  if (peer != nullptr && peer->start(peer_sink, ErrorBuf{err, sizeof(err)}) != PeerCode::kOk) {
    driver.stop();
    return fail("peer transport '" + config.peer.name + "': " + err);
  }
  for (size_t i = 0; i < transports.size(); ++i) {
    auto& [name, transport] = transports[i];
    if (transport->start(sinks[i], ErrorBuf{err, sizeof(err)}) != TransportCode::kOk) {
      for (size_t j = 0; j < i; ++j) transports[j].second->stop();
      if (peer != nullptr) peer->stop();
      driver.stop();
      return fail("client transport '" + name + "': " + err);
    }
  }
  if (config.standalone()) {
    spdlog::info("corrald {} standalone, data_dir {}, storage {}", config.id, config.data_dir,
                 config.storage.name);
  } else {
    spdlog::info("corrald {} in an ensemble of {} voters and {} observers, data_dir {}, storage {}",
                 config.id, config.voters.size(), config.observers.size(), config.data_dir,
                 config.storage.name);
  }
  for (auto& [name, transport] : transports) {
    // Scripts and tests wait for this exact line.
    std::printf("corrald serving: %s on %s\n", name.c_str(), transport->boundAddress());
  }
  std::fflush(stdout);

  int sig = 0;
  sigwait(&stop_signals, &sig);
  spdlog::info("signal {} received: shutting down", sig);
  for (auto& [name, transport] : transports) transport->stop();
  if (peer != nullptr) peer->stop();
  driver.stop();
  registry.reset();
  spdlog::info("stopped");
  return 0;
}

}  // namespace corral::tools
