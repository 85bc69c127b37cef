#include "corrald_process.h"

#include <cstdlib>
#include <sstream>
#include <stdexcept>

namespace corral::testing {
namespace {

std::string envOr(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::string(v) : fallback;
}

}  // namespace

std::string CorraldProcess::binDir() {
  return envOr("CORRAL_BIN_DIR", "build/out/bin");
}
std::string CorraldProcess::pluginDir() {
  return envOr("CORRAL_PLUGIN_DIR", "build/out/lib/corral/plugins");
}

std::string CorraldProcess::configText(const std::string& data_dir, const CorraldOptions& options) {
  std::ostringstream c;
  c << "[server]\n"
    << "data_dir = \"" << data_dir << "\"\n"
    << "tick_ms = " << options.tick_ms << "\n"
    << "min_session_timeout_ms = " << options.min_session_timeout_ms << "\n"
    << "max_session_timeout_ms = " << options.max_session_timeout_ms << "\n"
    << "plugin_dir = \"" << pluginDir() << "\"\n\n"
    << "[storage]\nplugin = \"" << options.storage << "\"\n\n"
    << "[client.zmq]\nlisten = \"tcp://127.0.0.1:*\"\n\n"
    << "[auth]\nproviders = [\"world\", \"digest\", \"ip\"]\n"
    << options.extra_toml << "\n";
  return c.str();
}

CorraldProcess::CorraldProcess(const TempDir& dir, const CorraldOptions& options)
    : dir_(dir), options_(options) {
  config_path_ = dir_.writeFile("corrald.toml", configText(dir_.path() + "/data", options_));
  restart();
}

CorraldProcess::~CorraldProcess() {
  if (process_) process_->stop();
}

void CorraldProcess::restart() {
  if (process_) process_->stop();
  std::vector<std::string> argv = {binDir() + "/corrald", "--config", config_path_};
  for (const auto& s : options_.sets) {
    argv.push_back("--set");
    argv.push_back(s);
  }
  ++starts_;
  process_ = std::make_unique<ChildProcess>(
      argv, dir_.path() + "/corrald." + std::to_string(starts_) + ".log");
  address_.clear();
}

std::string CorraldProcess::waitServing(milliseconds timeout) {
  static const std::string kMarker = "corrald serving: zmq on ";
  auto end = process_->waitForOutput(kMarker, timeout);
  if (!end) return "";
  auto eol = process_->waitForOutput("\n", milliseconds(1000), *end);
  if (!eol) return "";
  std::string out = process_->output();
  address_ = out.substr(*end, *eol - 1 - *end);
  while (!address_.empty() && (address_.back() == '\r' || address_.back() == ' '))
    address_.pop_back();
  return address_;
}

}  // namespace corral::testing
