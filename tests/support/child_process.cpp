#include "child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "temp_dir.h"

namespace corral::testing {
namespace {

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Forks and execs argv with stdin from a pipe (returned through stdin_fd) and stdout/stderr
// into the given files (which may be the same).
pid_t spawn(const std::vector<std::string>& argv, const std::string& out_path,
            const std::string& err_path, int* stdin_fd) {
  if (argv.empty()) throw std::runtime_error("spawn: empty argv");
  int in_pipe[2];
  if (pipe2(in_pipe, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  int out_fd = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  int err_fd = err_path == out_path
                   ? out_fd
                   : open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out_fd < 0 || err_fd < 0) throw std::runtime_error("cannot open " + out_path);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    dup2(in_pipe[0], 0);
    dup2(out_fd, 1);
    dup2(err_fd, 2);
    execv(args[0], args.data());
    dprintf(2, "exec %s failed: %s\n", args[0], strerror(errno));
    _exit(127);
  }
  close(in_pipe[0]);
  close(out_fd);
  if (err_fd != out_fd) close(err_fd);
  *stdin_fd = in_pipe[1];
  return pid;
}

}  // namespace

ChildProcess::ChildProcess(const std::vector<std::string>& argv, const std::string& log_path)
    : log_path_(log_path) {
  pid_ = spawn(argv, log_path, log_path, &stdin_fd_);
}

ChildProcess::~ChildProcess() {
  closeStdin();
  if (pid_ > 0 && !status_) {
    ::kill(pid_, SIGKILL);
    int st = 0;
    waitpid(pid_, &st, 0);
  }
}

std::string ChildProcess::output() const {
  return readFile(log_path_);
}

std::optional<size_t> ChildProcess::waitForOutput(const std::string& needle, milliseconds timeout,
                                                  size_t from) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    std::string out = output();
    if (out.size() > from) {
      size_t pos = out.find(needle, from);
      if (pos != std::string::npos) return pos + needle.size();
    }
    if (status_) return std::nullopt;
    int st = 0;
    if (waitpid(pid_, &st, WNOHANG) == pid_) {
      const_cast<ChildProcess*>(this)->status_ = st;
      // One last look: the process may have printed the needle just before exiting.
      out = output();
      size_t pos = out.size() > from ? out.find(needle, from) : std::string::npos;
      if (pos != std::string::npos) return pos + needle.size();
      return std::nullopt;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(milliseconds(5));
  }
}

void ChildProcess::writeStdin(const std::string& data) {
  size_t off = 0;
  while (stdin_fd_ >= 0 && off < data.size()) {
    ssize_t n = ::write(stdin_fd_, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error("write to child stdin failed");
    }
    off += static_cast<size_t>(n);
  }
}

void ChildProcess::closeStdin() {
  if (stdin_fd_ >= 0) {
    ::close(stdin_fd_);
    stdin_fd_ = -1;
  }
}

void ChildProcess::signal(int sig) const {
  if (pid_ > 0 && !status_) ::kill(pid_, sig);
}

std::optional<int> ChildProcess::wait(milliseconds timeout) {
  if (status_) return status_;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int st = 0;
    pid_t r = waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      status_ = st;
      return status_;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(milliseconds(2));
  }
}

bool ChildProcess::running() {
  return !wait(milliseconds(0)).has_value();
}

int ChildProcess::stop(milliseconds grace) {
  if (status_) return *status_;
  signal(SIGTERM);
  if (auto st = wait(grace)) return *st;
  signal(SIGKILL);
  return wait(milliseconds(10000)).value_or(-1);
}

CommandResult runCommand(const std::vector<std::string>& argv, const std::string& input,
                         milliseconds timeout) {
  TempDir dir("corral-cmd");
  std::string out_path = dir.path() + "/stdout";
  std::string err_path = dir.path() + "/stderr";
  int stdin_fd = -1;
  pid_t pid = spawn(argv, out_path, err_path, &stdin_fd);
  if (!input.empty()) {
    ssize_t ignored = ::write(stdin_fd, input.data(), input.size());
    (void)ignored;
  }
  ::close(stdin_fd);
  CommandResult result;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  int st = 0;
  for (;;) {
    if (waitpid(pid, &st, WNOHANG) == pid) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      waitpid(pid, &st, 0);
      result.timed_out = true;
      break;
    }
    std::this_thread::sleep_for(milliseconds(2));
  }
  if (!result.timed_out && WIFEXITED(st)) result.exit_code = WEXITSTATUS(st);
  result.stdout_text = readFile(out_path);
  result.stderr_text = readFile(err_path);
  result.output = result.stdout_text + result.stderr_text;
  return result;
}

}  // namespace corral::testing
