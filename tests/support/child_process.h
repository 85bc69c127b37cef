// ChildProcess: a program a test starts, talks to and stops by its PID.
//
// stdout and stderr go to one log file (so a chatty server never blocks on a full pipe);
// stdin is a pipe the test can write to. Every wait takes a deadline; the destructor
// kills (SIGKILL) and reaps a process that is still running, so no test leaks one.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace corral::testing {

using std::chrono::milliseconds;

class ChildProcess {
 public:
  // Starts argv[0] (a path) with the given arguments. Throws std::runtime_error if it cannot.
  ChildProcess(const std::vector<std::string>& argv, const std::string& log_path);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& logPath() const { return log_path_; }
  // Everything the process has printed so far.
  std::string output() const;

  // Waits until the output contains `needle` (searching from byte `from`), returning the
  // offset just past the match, or nullopt at the deadline or if the process exited first.
  std::optional<size_t> waitForOutput(const std::string& needle, milliseconds timeout,
                                      size_t from = 0) const;

  void writeStdin(const std::string& data);
  void closeStdin();

  // Sends a signal (by PID).
  void signal(int sig) const;
  // Waits for exit; returns the wait status, or nullopt at the deadline.
  std::optional<int> wait(milliseconds timeout);
  bool running();
  // SIGTERM, wait up to `grace`, then SIGKILL; returns the wait status.
  int stop(milliseconds grace = milliseconds(5000));

 private:
  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  std::string log_path_;
  std::optional<int> status_;
};

struct CommandResult {
  int exit_code = -1;  // -1 when killed by a signal or timed out
  bool timed_out = false;
  std::string output;  // stdout and stderr interleaved
  std::string stdout_text;
  std::string stderr_text;
};

// Runs a command to completion (bounded by timeout), feeding it `input` on stdin.
CommandResult runCommand(const std::vector<std::string>& argv, const std::string& input,
                         milliseconds timeout);

}  // namespace corral::testing
