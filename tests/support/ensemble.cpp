#include "ensemble.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "corrald_process.h"
#include "free_port.h"

namespace corral::testing {

std::string fourLetterWord(const std::string& address, const std::string& word) {
  size_t colon = address.rfind(':');
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "";
  timeval tv{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
  inet_pton(AF_INET, address.substr(0, colon).c_str(), &a.sin_addr);
  std::string answer;
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
      write(fd, word.data(), word.size()) == static_cast<ssize_t>(word.size())) {
    char buf[4096];
    for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;) answer.append(buf, n);
  }
  close(fd);
  return answer;
}

Ensemble::Ensemble(const TempDir& dir, EnsembleOptions options)
    : dir_(dir), options_(std::move(options)) {
  for (int id : ids()) {
    peer_ports_[id] = freeLoopbackPort();
    native_ports_[id] = freeLoopbackPort();
    zkwire_ports_[id] = freeLoopbackPort();
  }
  std::string servers, observers;
  for (int id : ids()) {
    std::string entry =
        "\"" + std::to_string(id) + "=127.0.0.1:" + std::to_string(peer_ports_[id]) + "\"";
    std::string& list = isObserver(id) ? observers : servers;
    list += (list.empty() ? "" : ", ") + entry;
  }
  for (int id : ids()) {
    std::filesystem::create_directories(dataDir(id));
    std::ostringstream c;
    c << "[server]\nid = " << id << "\ndata_dir = \"" << dataDir(id) << "\"\n"
      << "tick_ms = " << options_.tick_ms << "\ninit_limit = " << options_.init_limit
      << "\nsync_limit = " << options_.sync_limit
      << "\nmin_session_timeout_ms = " << options_.min_session_timeout_ms
      << "\nmax_session_timeout_ms = " << options_.max_session_timeout_ms << "\nplugin_dir = \""
      << CorraldProcess::pluginDir() << "\"\n\n"
      << "[ensemble]\nservers = [" << servers << "]\nobservers = [" << observers << "]\n\n"
      << "[peer]\nplugin = \"" << options_.peer << "\"\n\n"
      << "[storage]\nplugin = \"" << options_.storage << "\"\n";
    if (options_.storage == "lmdb") c << "[storage.lmdb]\nmap_size_mb = 256\nsync = \"fsync\"\n";
    c << "\n[client.zmq]\nlisten = \"tcp://127.0.0.1:" << native_ports_[id] << "\"\n"
      << "[client.zkwire]\nlisten = \"127.0.0.1:" << zkwire_ports_[id] << "\"\n\n"
      << "[auth]\nproviders = [\"world\", \"digest\", \"ip\"]\n"
      << options_.extra_toml << "\n";
    config_paths_[id] = dir_.writeFile("server" + std::to_string(id) + ".toml", c.str());
  }
}

Ensemble::~Ensemble() {
  for (auto& [id, p] : processes_) {
    if (!p) continue;
    p->signal(SIGCONT);  // a paused server cannot take SIGTERM
    p->stop();
  }
}

std::vector<int> Ensemble::ids() const {
  std::vector<int> v;
  for (int i = 1; i <= options_.voters + options_.observers; ++i) v.push_back(i);
  return v;
}

std::string Ensemble::dataDir(int id) const {
  return dir_.path() + "/server" + std::to_string(id);
}

std::string Ensemble::nativeAddress(int id) const {
  return "tcp://127.0.0.1:" + std::to_string(native_ports_.at(id));
}

std::string Ensemble::zkwireAddress(int id) const {
  return "127.0.0.1:" + std::to_string(zkwire_ports_.at(id));
}

std::vector<std::string> Ensemble::nativeAddresses(const std::vector<int>& which) const {
  std::vector<std::string> v;
  for (int id : which) v.push_back(nativeAddress(id));
  return v;
}

void Ensemble::start(int id) {
  auto& p = processes_[id];
  if (p && p->running()) return;
  int n = ++starts_[id];
  p = std::make_unique<ChildProcess>(
      std::vector<std::string>{CorraldProcess::binDir() + "/corrald", "--config",
                               config_paths_.at(id)},
      dir_.path() + "/server" + std::to_string(id) + "." + std::to_string(n) + ".log");
}

void Ensemble::startAll() {
  for (int id : ids()) start(id);
}

bool Ensemble::waitStarted(int id, milliseconds timeout) {
  return processes_.at(id)->waitForOutput("corrald serving: zkwire on ", timeout).has_value();
}

void Ensemble::kill(int id) {
  auto& p = processes_.at(id);
  p->signal(SIGKILL);
  p->wait(milliseconds(10000));
}

void Ensemble::stop(int id) {
  processes_.at(id)->stop();
}

void Ensemble::pause(int id) {
  processes_.at(id)->signal(SIGSTOP);
}

void Ensemble::resume(int id) {
  processes_.at(id)->signal(SIGCONT);
}

bool Ensemble::running(int id) const {
  auto it = processes_.find(id);
  return it != processes_.end() && it->second && it->second->running();
}

std::string Ensemble::mntr(int id) const {
  return fourLetterWord(zkwireAddress(id), "mntr");
}

std::string Ensemble::role(int id) const {
  std::string srvr = fourLetterWord(zkwireAddress(id), "srvr");
  size_t mode = srvr.find("Mode: ");
  if (mode == std::string::npos) return "";
  return srvr.substr(mode + 6, srvr.find('\n', mode) - mode - 6);
}

bool Ensemble::waitServing(int id, milliseconds timeout) const {
  auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (!role(id).empty()) return true;
    std::this_thread::sleep_for(milliseconds(20));
  }
  return false;
}

int Ensemble::waitLeader(milliseconds timeout) const {
  auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    int leader = 0;
    bool all = true;
    for (int id : ids()) {
      if (!running(id)) continue;
      std::string r = role(id);
      if (r.empty()) all = false;
      if (r == "leader") leader = leader == 0 ? id : -1;
    }
    if (all && leader > 0) return leader;
    std::this_thread::sleep_for(milliseconds(20));
  }
  return 0;
}

namespace {
size_t count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}
}  // namespace

void Ensemble::setFaults(int id, const std::string& rules) {
  std::string path = dataDir(id) + "/peer-faults";
  // The server logs every change of its rules ("peer faults: ..." / "no peer faults"): wait
  // for that line, so the faults are in force when this returns.
  bool live = running(id);
  size_t before = live ? count(processes_.at(id)->output(), "peer faults") : 0;
  {
    std::ofstream f(path + ".tmp", std::ios::trunc);
    f << rules;
  }
  std::filesystem::rename(path + ".tmp", path);
  if (!live) return;
  auto end = std::chrono::steady_clock::now() + milliseconds(3000);
  while (std::chrono::steady_clock::now() < end &&
         count(processes_.at(id)->output(), "peer faults") <= before)
    std::this_thread::sleep_for(milliseconds(10));
}

void Ensemble::isolate(int id) {
  std::string rules;
  for (int other : ids())
    if (other != id) {
      rules += "cut " + std::to_string(other) + "\n";
      setFaults(other, "cut " + std::to_string(id) + "\n");
    }
  setFaults(id, rules);
}

void Ensemble::healAll() {
  for (int id : ids()) setFaults(id, "");
}

void printServerLogTails(const TempDir& dir, size_t lines) {
  std::vector<std::filesystem::path> logs;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path()))
    if (entry.path().extension() == ".log") logs.push_back(entry.path());
  std::sort(logs.begin(), logs.end());
  for (const auto& path : logs) {
    std::ifstream in(path);
    std::deque<std::string> tail;
    for (std::string line; std::getline(in, line);) {
      tail.push_back(std::move(line));
      if (tail.size() > lines) tail.pop_front();
    }
    std::fprintf(stderr, "---- last %zu lines of %s\n", tail.size(), path.filename().c_str());
    for (const std::string& line : tail) std::fprintf(stderr, "%s\n", line.c_str());
  }
}

}  // namespace corral::testing
