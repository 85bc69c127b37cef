// corral-admin: offline tools for a server's data dir, through the same config and storage
// plugin the server uses (run it while the server is stopped).
//   corral-admin --config FILE [--set K=V]... verify
//   corral-admin --config FILE [--set K=V]... dump-log [--from ZXID] [--limit N]
//   corral-admin --config FILE [--set K=V]... dump-snapshot [--data]
// and two for a running server:
//   corral-admin --config FILE status               its role, epoch, zxids, followers (mntr)
//   corral-admin --config FILE faults RULE...|clear  inject peer faults (peer_faults.h)
#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "config/config.h"
#include "driver/peer_faults.h"
#include "plugins/plugin_registry.h"
#include "server/kernel.h"
#include "txn_text.h"

namespace {

using namespace corral;
using namespace corral::kernel;

const char kUsage[] =
    "usage: corral-admin --config FILE [--set TABLE.KEY=VALUE]... COMMAND\n"
    "  verify                          check the store offline: checksums, snapshot, every\n"
    "                                  txn of the log replayed; exit 0 when sound\n"
    "  dump-log [--from Z] [--limit N] print the log's txns after zxid Z\n"
    "  dump-snapshot [--data]          print the newest snapshot's tree (with --data, the data)\n"
    "while the server runs:\n"
    "  status [--server HOST:PORT]     role, epoch, zxids, followers and their lag (ZooKeeper's\n"
    "                                  mntr on the zkwire port; default: the config's)\n"
    "  faults RULE... | clear          inject network faults between this server and peers:\n"
    "                                  'cut ID', 'drop ID P', 'delay ID MS' (several: repeat)\n";

std::string exeDir() {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return ".";
  buf[n] = '\0';
  return std::filesystem::path(buf).parent_path().string();
}

class NullOutput : public KernelOutput {
 public:
  void send(uint64_t, std::string) override {}
  void close(uint64_t) override {}
  bool append(int64_t, std::string_view, std::string*) override { return true; }
  void requestSync() override {}
  void truncateAfter(int64_t) override {}
  void snapshotDue(int64_t) override {}
  void log(corral_log_level, const std::string&) override {}
};

struct SnapshotCopy : SnapshotVisitor {
  uint64_t zxid = 0;
  std::string data;
  bool found = false;
  void onSnapshot(uint64_t z, ByteView d) noexcept override {
    zxid = z;
    data.assign(d.str());
    found = true;
  }
};

struct Replay : LogVisitor {
  Kernel* kernel = nullptr;
  bool print = false;
  int64_t limit = -1;
  int64_t count = 0;
  uint64_t first = 0, last = 0;
  std::string error;
  bool onRecord(uint64_t zxid, ByteView record) noexcept override {
    if (first == 0) first = zxid;
    last = zxid;
    ++count;
    if (print) {
      Txn t;
      std::string e;
      if (decodeTxn(record.str(), &t, &e))
        std::cout << admin::txnText(t) << "\n";
      else
        std::cout << "zxid " << zxid << " <undecodable: " << e << ">\n";
      return limit < 0 || count < limit;
    }
    if (!kernel->replay(static_cast<int64_t>(zxid), record.str(), &error)) return false;
    return true;
  }
};

// Depth-first listing of the restored tree, as a superuser sees it.
void dumpTree(StateMachine& sm, const std::string& path, bool with_data) {
  std::vector<Id> ids;
  SessionView root{0, &ids, true};
  Request req;
  req.op.op = OpCode::kGetData;
  req.op.path = path;
  Applied got = sm.read(root, req);
  const Stat& s = got.response.result.stat;
  std::cout << path << "  czxid=0x" << std::hex << s.czxid << " mzxid=0x" << s.mzxid << std::dec
            << " version=" << s.version << " cversion=" << s.cversion
            << " children=" << s.num_children << " bytes=" << s.data_length;
  if (s.ephemeral_owner != 0) std::cout << " owner=0x" << std::hex << s.ephemeral_owner << std::dec;
  if (with_data) std::cout << " data=" << admin::bytesText(got.response.result.data);
  std::cout << "\n";
  req.op.op = OpCode::kGetChildren;
  Applied children = sm.read(root, req);
  for (const std::string& c : children.response.result.children)
    dumpTree(sm, path == "/" ? "/" + c : path + "/" + c, with_data);
}

// The address in `listen = "host:port"` of a [client.zkwire] table.
std::string zkwireAddress(const ServerConfig& config) {
  for (const auto& t : config.client_transports) {
    if (t.name != "zkwire") continue;
    size_t key = t.config_toml.find("listen");
    // toml++ writes strings with either quote.
    size_t open = t.config_toml.find_first_of("\"'", key);
    size_t close =
        open == std::string::npos ? open : t.config_toml.find(t.config_toml[open], open + 1);
    if (key != std::string::npos && open != std::string::npos && close != std::string::npos)
      return t.config_toml.substr(open + 1, close - open - 1);
  }
  return "";
}

// Sends a four-letter word and returns the whole answer ("" when nobody answered).
std::string askFourLetterWord(const std::string& address, const char* word, std::string* error) {
  size_t colon = address.rfind(':');
  if (colon == std::string::npos) {
    *error = "bad address '" + address + "'";
    return "";
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(address.substr(0, colon).c_str(), address.substr(colon + 1).c_str(), &hints,
                  &res) != 0 ||
      res == nullptr) {
    *error = "cannot resolve " + address;
    return "";
  }
  int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  bool ok = fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) == 0;
  freeaddrinfo(res);
  std::string answer;
  if (ok && write(fd, word, 4) == 4) {
    char buf[4096];
    for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;) answer.append(buf, n);
  } else {
    *error = "cannot reach " + address + ": " + std::strerror(errno);
  }
  if (fd >= 0) close(fd);
  return answer;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path, command;
  std::vector<std::string> sets;
  uint64_t from = 0;
  int64_t limit = -1;
  bool with_data = false;
  std::string server;
  std::vector<std::string> words;  // what follows the command (faults rules)
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "corral-admin: " << a << " needs a value\n" << kUsage;
        std::exit(2);
      }
      return argv[++i];
    };
    try {
      if (a == "--config")
        config_path = value();
      else if (a == "--set")
        sets.push_back(value());
      else if (a == "--from")
        from = std::stoull(value(), nullptr, 0);
      else if (a == "--limit")
        limit = std::stoll(value());
      else if (a == "--data")
        with_data = true;
      else if (a == "--server")
        server = value();
      else if (a == "-h" || a == "--help") {
        std::cout << kUsage;
        return 0;
      } else if (command.empty() && a[0] != '-')
        command = a;
      else if (command == "faults")
        words.push_back(a);
      else {
        std::cerr << "corral-admin: unknown argument '" << a << "'\n" << kUsage;
        return 2;
      }
    } catch (const std::exception&) {
      std::cerr << "corral-admin: bad number for " << a << "\n";
      return 2;
    }
  }
  bool known = command == "verify" || command == "dump-log" || command == "dump-snapshot" ||
               command == "status" || command == "faults";
  if (config_path.empty() || !known) {
    std::cerr << kUsage;
    return 2;
  }
  ServerConfig config;
  std::string error;
  if (!loadConfig(config_path, sets, exeDir(), &config, &error)) {
    std::cerr << "corral-admin: " << error << "\n";
    return 2;
  }
  if (command == "status") {
    if (server.empty()) server = zkwireAddress(config);
    if (server.empty()) {
      std::cerr << "corral-admin: the config enables no [client.zkwire]; give --server\n";
      return 2;
    }
    std::string answer = askFourLetterWord(server, "mntr", &error);
    if (answer.empty()) {
      std::cerr << "corral-admin: " << (error.empty() ? server + " did not answer" : error) << "\n";
      return 1;
    }
    std::cout << answer;
    return 0;
  }
  if (command == "faults") {
    // Rules as words: "cut 2 drop 3 0.5" -> one rule per line.
    std::string text;
    for (size_t i = 0; i < words.size(); ++i) {
      const std::string& w = words[i];
      if (w == "clear") continue;
      size_t args = w == "cut" ? 1 : (w == "drop" || w == "delay") ? 2 : 0;
      if (args == 0 || i + args >= words.size()) {
        std::cerr << "corral-admin: faults: cannot use '" << w << "'\n" << kUsage;
        return 2;
      }
      text += w;
      for (size_t j = 1; j <= args; ++j) text += " " + words[i + j];
      text += "\n";
      i += args;
    }
    std::vector<std::string> problems;
    PeerFaults::parse(text, &problems);
    if (!problems.empty()) {
      std::cerr << "corral-admin: " << problems.front() << "\n";
      return 2;
    }
    std::string path = config.data_dir + "/peer-faults";
    std::string tmp = path + ".tmp";
    {
      std::ofstream f(tmp, std::ios::trunc);
      f << text;
      if (!f) {
        std::cerr << "corral-admin: cannot write " << tmp << "\n";
        return 1;
      }
    }
    std::filesystem::rename(tmp, path);
    std::cout << (text.empty() ? "no faults\n" : text);
    return 0;
  }

  corral_host_api host{};
  host.struct_size = sizeof(host);
  host.max_request_bytes = static_cast<uint64_t>(config.max_request_bytes);
  host.data_dir = config.data_dir.c_str();
  PluginRegistry registry(config.plugin_dir, &host);
  StoragePlugin* storage =
      registry.createStorage(config.storage.name, config.storage.config_toml, &error);
  if (storage == nullptr) {
    std::cerr << "corral-admin: " << error << "\n";
    return 1;
  }
  char err[512] = {0};
  if (storage->open(ErrorBuf{err, sizeof(err)}) != StorageCode::kOk) {
    std::cerr << "corral-admin: " << err << "\n";
    return 1;
  }

  SnapshotCopy snap;
  StorageCode code = storage->loadSnapshot(snap, ErrorBuf{err, sizeof(err)});
  if (code != StorageCode::kOk && code != StorageCode::kNotFound) {
    std::cerr << "corral-admin: " << err << "\n";
    return 1;
  }

  if (command == "dump-log") {
    Replay r;
    r.print = true;
    r.limit = limit;
    if (storage->readLog(from, r, ErrorBuf{err, sizeof(err)}) != StorageCode::kOk) {
      std::cerr << "corral-admin: " << err << "\n";
      return 1;
    }
    return 0;
  }

  NullOutput out;
  KernelOptions options;
  options.max_request_bytes = static_cast<uint64_t>(config.max_request_bytes);
  Kernel kernel(options, nullptr, &out);
  if (snap.found && !kernel.restoreSnapshot(snap.data, &error)) {
    std::cerr << "corral-admin: snapshot at zxid " << snap.zxid << ": " << error << "\n";
    return 1;
  }
  if (command == "dump-snapshot") {
    if (!snap.found) {
      std::cout << "no snapshot\n";
      return 0;
    }
    std::cout << "snapshot at zxid 0x" << std::hex << snap.zxid << std::dec << ", "
              << snap.data.size() << " bytes\n";
    StateMachine sm(nullptr, StateLimits{});
    if (!sm.restore(snap.data, &error)) {
      std::cerr << "corral-admin: " << error << "\n";
      return 1;
    }
    dumpTree(sm, "/", with_data);
    for (const SessionInfo& s : sm.sessions())
      std::cout << "session 0x" << std::hex << s.session_id << std::dec
                << " timeout=" << s.timeout_ms << "ms\n";
    return 0;
  }

  Replay r;
  r.kernel = &kernel;
  if (storage->readLog(static_cast<uint64_t>(kernel.state().lastZxid()), r,
                       ErrorBuf{err, sizeof(err)}) != StorageCode::kOk) {
    std::cerr << "corral-admin: " << err << "\n";
    return 1;
  }
  if (!r.error.empty()) {
    std::cerr << "corral-admin: " << r.error << "\n";
    return 1;
  }
  std::cout << "ok: " << config.data_dir << " (" << config.storage.name << ")\n"
            << "  snapshot: " << (snap.found ? "zxid " + std::to_string(snap.zxid) : "none")
            << "\n  log replayed: " << r.count << " txns"
            << (r.count ? " (zxid " + std::to_string(r.first) + ".." + std::to_string(r.last) + ")"
                        : "")
            << "\n  state: " << kernel.state().nodeCount() << " znodes, "
            << kernel.state().sessions().size() << " sessions, last zxid "
            << kernel.state().lastZxid() << "\n";
  return 0;
}
