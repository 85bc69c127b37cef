// CorraldProcess: a real corrald started by a test on 127.0.0.1 with a generated config
// (ephemeral ports, its own data dir), stopped by its PID.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "child_process.h"
#include "temp_dir.h"

namespace corral::testing {

struct CorraldOptions {
  std::string storage = "memory";
  int tick_ms = 50;
  int min_session_timeout_ms = 100;
  int max_session_timeout_ms = 20000;
  // Appended verbatim to the generated config (extra tables or keys).
  std::string extra_toml;
  // Passed as --set arguments.
  std::vector<std::string> sets;
};

class CorraldProcess {
 public:
  // Writes <dir>/corrald.toml and starts corrald. `dir` must outlive this object.
  CorraldProcess(const TempDir& dir, const CorraldOptions& options = {});
  ~CorraldProcess();

  // Waits for "corrald serving: zmq on ADDR" and returns ADDR ("" at the deadline).
  std::string waitServing(milliseconds timeout = milliseconds(20000));
  // Starts again (after stop/kill) with the same config and data dir.
  void restart();

  ChildProcess& process() { return *process_; }
  const std::string& address() const { return address_; }
  const std::string& configPath() const { return config_path_; }
  // The generated config text (what a test starting corrald by hand can reuse).
  static std::string configText(const std::string& data_dir, const CorraldOptions& options);

  static std::string binDir();     // $CORRAL_BIN_DIR
  static std::string pluginDir();  // $CORRAL_PLUGIN_DIR

 private:
  const TempDir& dir_;
  CorraldOptions options_;
  std::string config_path_;
  std::string address_;
  int starts_ = 0;
  std::unique_ptr<ChildProcess> process_;
};

}  // namespace corral::testing
