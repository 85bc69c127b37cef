// corral: the Corral command-line shell, in the spirit of zkCli.sh.
//   corral [-s ADDR[,ADDR...]] [-t TIMEOUT_MS]               interactive shell
//   corral [-s ADDR] [-t TIMEOUT_MS] COMMAND [ARGS...]        one command, for scripts
#include <readline/history.h>
#include <readline/readline.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "cli_text.h"
#include "shell.h"

namespace {

using namespace corral::cli;

const char kUsage[] =
    "usage: corral [-s|--server ADDR[,ADDR...]] [-t|--timeout MS] [COMMAND [ARGS...]]\n"
    "ADDR is host:port or a ZeroMQ endpoint (default tcp://127.0.0.1:2281).\n"
    "Without COMMAND: an interactive shell (type help). With one: runs it and exits\n"
    "0 on success, 1 on a ZooKeeper error (named on stderr), 2 on a usage error,\n"
    "3 when the server cannot be reached.\n";

std::string historyPath() {
  const char* home = std::getenv("HOME");
  return home != nullptr ? std::string(home) + "/.corral_history" : "";
}

int interactive(Shell& shell) {
  const bool tty = isatty(STDIN_FILENO);
  std::string history = historyPath();
  if (tty && !history.empty()) read_history(history.c_str());
  int line_no = 0;
  while (!shell.done()) {
    std::string line;
    if (tty) {
      std::string prompt = "[corral: " + shell.servers() +
                           (shell.connected() ? "(CONNECTED) " : "(DISCONNECTED) ") +
                           std::to_string(line_no) + "] ";
      char* raw = readline(prompt.c_str());
      if (raw == nullptr) break;
      line = raw;
      std::free(raw);
      if (!line.empty()) add_history(line.c_str());
    } else if (!std::getline(std::cin, line)) {
      break;
    }
    std::vector<std::string> tokens = tokenize(line);
    if (tokens.empty()) continue;
    ++line_no;
    shell.history()->push_back(line);
    std::string error;
    auto cmd = parseCommand(tokens, &error);
    if (!cmd) {
      std::cerr << error << std::endl;
      continue;
    }
    shell.run(*cmd);
  }
  if (tty && !history.empty()) write_history(history.c_str());
  if (!shell.done()) shell.run(ParsedCommand{"quit", {}, {}, {}});
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  std::string servers = "tcp://127.0.0.1:2281";
  int32_t timeout_ms = 30000;
  std::vector<std::string> command;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (!command.empty()) {
      command.push_back(a);
    } else if ((a == "-s" || a == "--server" || a == "-server") && i + 1 < argc) {
      servers = argv[++i];
    } else if ((a == "-t" || a == "--timeout" || a == "-timeout") && i + 1 < argc) {
      try {
        timeout_ms = std::stoi(argv[++i]);
      } catch (...) {
        std::cerr << "corral: bad timeout '" << argv[i] << "'\n" << kUsage;
        return kExitUsage;
      }
    } else if (a == "-h" || a == "--help") {
      std::cout << kUsage << helpText();
      return kExitOk;
    } else {
      command.push_back(a);
    }
  }

  std::optional<ParsedCommand> cmd;
  if (!command.empty()) {
    std::string error;
    cmd = parseCommand(command, &error);
    if (!cmd) {
      std::cerr << "corral: " << error << "\n";
      return kExitUsage;
    }
  }
  Shell shell(std::cout, std::cerr, timeout_ms);
  if (cmd && (cmd->name == "help" || cmd->name == "history")) return shell.run(*cmd);
  int rc = shell.connect(servers);
  if (rc != kExitOk) return rc;
  if (!cmd) return interactive(shell);
  rc = shell.run(*cmd);
  // One-shot watch: wait for the event it set, print it, then end the session.
  if (rc == kExitOk && cmd->flags.count('w') != 0) shell.waitForEvents(1);
  if (rc == kExitOk && cmd->name == "addWatch") shell.waitForEvents(1);
  if (!shell.done()) shell.run(ParsedCommand{"quit", {}, {}, {}});
  return rc;
}
