// Shell: runs parsed commands against a Corral server through corral::Client and prints
// their results; shared by one-shot mode (`corral -s ADDR get /a`) and the interactive
// shell. Watch events are printed as they arrive, from the client's thread.
#pragma once

#include <corral/client.h>

#include <condition_variable>
#include <iosfwd>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cli_text.h"

namespace corral::cli {

// Exit statuses of one-shot mode.
enum ExitCode { kExitOk = 0, kExitZkError = 1, kExitUsage = 2, kExitNoConnection = 3 };

class Shell {
 public:
  Shell(std::ostream& out, std::ostream& err, int32_t session_timeout_ms);
  ~Shell();

  // "host:port[,host:port]" or native endpoints; kExitOk or kExitNoConnection.
  int connect(const std::string& servers);
  // Runs one command; returns an ExitCode. "quit"/"exit" set done().
  int run(const ParsedCommand& cmd);
  bool done() const { return done_; }
  // Waits until at least `n` watch events have been printed.
  void waitForEvents(size_t n);
  const std::string& servers() const { return servers_; }
  bool connected() const;
  std::vector<std::string>* history() { return &history_; }

 private:
  int fail(ZkError err, const std::string& path);
  WatchCallback printer();
  void print(const std::string& text);
  int deleteAll(const std::string& path);
  int listRecursive(const std::string& path);
  int setAclRecursive(const std::string& path, const std::vector<Acl>& acl, int32_t version);

  std::ostream& out_;
  std::ostream& err_;
  int32_t timeout_ms_;
  std::string servers_;
  std::unique_ptr<Client> client_;
  bool done_ = false;
  std::vector<std::string> history_;

  std::mutex mu_;  // serialises output between the shell and the client's thread
  std::condition_variable cv_;
  size_t events_printed_ = 0;
};

// "h:p,h2:p2" -> {"tcp://h:p", "tcp://h2:p2"}; native endpoints pass through.
std::vector<std::string> serverList(const std::string& servers);

}  // namespace corral::cli
