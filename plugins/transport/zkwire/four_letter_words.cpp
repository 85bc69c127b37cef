#include "four_letter_words.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <sstream>

namespace corral::zkwire {
namespace {

const char kVersion[] = "3.8.0-corral-0.1.0, built on 2026-11-23";

std::string hex(int64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

// "key value" lines -> map.
std::map<std::string, std::string> parseStats(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  for (std::string key, value; in >> key >> value;) out[key] = value;
  return out;
}

std::string stat(const std::map<std::string, std::string>& s, const char* key) {
  auto it = s.find(key);
  return it == s.end() ? "0" : it->second;
}

size_t openFiles() {
  size_t n = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (readdir(d) != nullptr) ++n;
    closedir(d);
  }
  return n > 2 ? n - 3 : 0;  // ".", ".." and the directory's own descriptor
}

std::string connectionLines(const ServerFacts& f) {
  std::string out;
  for (const ConnectionFacts& c : f.connections) {
    out += " /" + c.remote + "[1](queued=0,recved=" + std::to_string(c.received) +
           ",sent=" + std::to_string(c.sent);
    if (c.session_id != 0) out += ",sid=" + hex(c.session_id);
    out += ")\n";
  }
  return out;
}

// ZooKeeper's "Mode:" for the kernel's role: standalone, leader, follower, observer.
std::string mode(const std::map<std::string, std::string>& s) {
  auto it = s.find("server_state");
  if (it == s.end()) return "standalone";
  return it->second;
}

bool serving(const std::map<std::string, std::string>& s) {
  return s.find("server_state") == s.end() || stat(s, "serving") == "1";
}

const char kNotServing[] = "This ZooKeeper instance is not currently serving requests\n";

std::string serverLines(const ServerFacts& f, const std::map<std::string, std::string>& s) {
  int64_t zxid = std::stoll(stat(s, "last_zxid"));
  return std::string("Zookeeper version: ") + kVersion + "\n" + "Latency min/avg/max: 0/0.0/0\n" +
         "Received: " + std::to_string(f.packets_received) + "\n" +
         "Sent: " + std::to_string(f.packets_sent) + "\n" +
         "Connections: " + std::to_string(f.connections.size()) + "\n" +
         "Outstanding: " + stat(s, "outstanding_requests") + "\n" + "Zxid: " + hex(zxid) + "\n" +
         "Mode: " + mode(s) + "\n" + "Node count: " + stat(s, "znode_count") + "\n";
}

}  // namespace

bool isFourLetterWord(std::string_view w) {
  for (const char* known :
       {"ruok", "srvr", "stat", "mntr", "conf", "cons", "envi", "wchs", "dump", "isro"})
    if (w == known) return true;
  return false;
}

std::string answerFourLetterWord(std::string_view w, const ServerFacts& f) {
  if (w == "ruok") return "imok";
  if (w == "isro") return "rw";
  auto ask = [&](const char* q) { return f.ask ? f.ask(q) : std::string(); };
  if (w == "srvr" || w == "stat") {
    auto s = parseStats(ask("stats"));
    if (!serving(s)) return kNotServing;
    std::string server = serverLines(f, s);
    if (w == "srvr") return server;
    std::string first_line = server.substr(0, server.find('\n') + 1);
    return first_line + "Clients:\n" + connectionLines(f) + "\n" + server.substr(first_line.size());
  }
  if (w == "cons") return connectionLines(f) + "\n";
  if (w == "mntr") {
    auto s = parseStats(ask("stats"));
    std::string out;
    auto line = [&](const char* k, const std::string& v) {
      out += std::string(k) + "\t" + v + "\n";
    };
    rlimit lim{};
    getrlimit(RLIMIT_NOFILE, &lim);
    line("zk_version", kVersion);
    line("zk_avg_latency", "0.0");
    line("zk_max_latency", "0");
    line("zk_min_latency", "0");
    line("zk_packets_received", std::to_string(f.packets_received));
    line("zk_packets_sent", std::to_string(f.packets_sent));
    line("zk_num_alive_connections", std::to_string(f.connections.size()));
    line("zk_outstanding_requests", stat(s, "outstanding_requests"));
    line("zk_server_state", mode(s));
    if (mode(s) == "leader") {
      line("zk_learners", stat(s, "learners"));
      line("zk_followers", stat(s, "learners"));
      line("zk_synced_followers", stat(s, "synced_followers"));
      line("zk_synced_observers", stat(s, "observers"));
      for (const auto& [key, value] : s)
        if (key.rfind("learner_", 0) == 0) line(("corral_" + key).c_str(), value);
    }
    if (s.count("epoch")) {
      line("corral_epoch", stat(s, "epoch"));
      line("corral_leader_id", stat(s, "leader_id"));
      line("corral_last_logged_zxid", hex(std::stoll(stat(s, "last_logged_zxid"))));
      line("corral_last_committed_zxid", hex(std::stoll(stat(s, "last_committed_zxid"))));
    }
    line("zk_znode_count", stat(s, "znode_count"));
    line("zk_watch_count", stat(s, "watch_count"));
    line("zk_ephemerals_count", stat(s, "ephemerals_count"));
    line("zk_approximate_data_size", stat(s, "approximate_data_size"));
    line("zk_open_file_descriptor_count", std::to_string(openFiles()));
    line("zk_max_file_descriptor_count", std::to_string(lim.rlim_cur));
    return out;
  }
  if (w == "wchs") {
    auto s = parseStats(ask("stats"));
    return stat(s, "watching_sessions") + " connections watching " + stat(s, "watched_paths") +
           " paths\nTotal watches:" + stat(s, "watch_count") + "\n";
  }
  if (w == "dump") {
    std::string sessions = ask("sessions");
    std::string globals, ephemerals;
    size_t count = 0, with_ephemerals = 0;
    std::istringstream in(sessions);
    std::string current;
    bool current_has = false;
    for (std::string line; std::getline(in, line);) {
      if (line.empty()) continue;
      if (line[0] == '\t') {
        if (!current_has) {
          ephemerals += current + ":\n";
          ++with_ephemerals;
          current_has = true;
        }
        ephemerals += line + "\n";
        continue;
      }
      std::istringstream fields(line);
      std::string id, timeout;
      fields >> id >> timeout;
      globals += id + "\t" + timeout + "ms\n";
      current = id;
      current_has = false;
      ++count;
    }
    return "SessionTracker dump:\nGlobal Sessions(" + std::to_string(count) + "):\n" + globals +
           "ephemeral nodes dump:\nSessions with Ephemerals (" + std::to_string(with_ephemerals) +
           "):\n" + ephemerals;
  }
  if (w == "conf") {
    return "clientPort=" + f.listen.substr(f.listen.rfind(':') + 1) + "\n" +
           "clientPortAddress=" + f.listen.substr(0, f.listen.rfind(':')) + "\n" +
           "dataDir=" + f.data_dir + "\n" +
           "maxClientCnxns=" + std::to_string(f.max_connections_per_ip) + "\n" +
           "jute.maxbuffer=" + std::to_string(f.max_request_bytes) + "\n" + "serverId=0\n" +
           "standaloneEnabled=true\n";
  }
  if (w == "envi") {
    char host[256] = {0};
    gethostname(host, sizeof(host) - 1);
    return std::string("Environment:\nzookeeper.version=") + kVersion + "\nhost.name=" + host +
           "\nos.name=Linux\nuser.dir=" + f.data_dir + "\n";
  }
  return "";
}

}  // namespace corral::zkwire
