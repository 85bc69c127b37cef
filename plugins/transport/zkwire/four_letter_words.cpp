#include "four_letter_words.h"

#include <unistd.h>

#include <cstdio>

namespace corral::zkwire {
namespace {

const char kVersion[] = "3.8.0-corral-0.1.0, built on 2026-11-23";

std::string hex(int64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "0x%llx", static_cast<unsigned long long>(v));
  return buf;
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
  if (w == "srvr" || w == "stat") {
    std::string out = std::string("Zookeeper version: ") + kVersion + "\n";
    if (w == "stat") out += "Clients:\n\n";
    out += "Latency min/avg/max: 0/0.0/0\n";
    out += "Received: " + std::to_string(f.packets_received) + "\n";
    out += "Sent: " + std::to_string(f.packets_sent) + "\n";
    out += "Connections: " + std::to_string(f.connections) + "\n";
    out += "Outstanding: 0\n";
    out += "Zxid: " + hex(f.last_zxid) + "\n";
    out += "Mode: standalone\n";
    return out;
  }
  if (w == "mntr") {
    std::string out;
    auto line = [&](const char* k, const std::string& v) {
      out += std::string(k) + "\t" + v + "\n";
    };
    line("zk_version", kVersion);
    line("zk_server_state", "standalone");
    line("zk_packets_received", std::to_string(f.packets_received));
    line("zk_packets_sent", std::to_string(f.packets_sent));
    line("zk_num_alive_connections", std::to_string(f.connections));
    line("zk_outstanding_requests", "0");
    return out;
  }
  if (w == "conf") {
    return "clientPort=" + f.listen.substr(f.listen.rfind(':') + 1) + "\n" +
           "clientPortAddress=" + f.listen + "\n" +
           "maxClientCnxns=" + std::to_string(f.max_connections_per_ip) + "\n" +
           "jute.maxbuffer=" + std::to_string(f.max_request_bytes) + "\n";
  }
  if (w == "cons") return "connections: " + std::to_string(f.connections) + "\n";
  if (w == "envi") {
    char host[256] = {0};
    gethostname(host, sizeof(host) - 1);
    return std::string("Environment:\nzookeeper.version=") + kVersion + "\nhost.name=" + host +
           "\nserver=corral\n";
  }
  if (w == "wchs" || w == "dump")
    return "watches and sessions are kept by the kernel; see `corral` for them\n";
  return "";
}

}  // namespace corral::zkwire
