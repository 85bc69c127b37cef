// ZooKeeper's four-letter words (ruok, srvr, stat, mntr, conf, cons, envi, wchs, dump, isro),
// answered on the client port in ZooKeeper's formats. The kernel's numbers (znodes, watches,
// sessions, ephemerals) come through the host API's query(); the transport adds its own
// connection counters.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace corral::zkwire {

struct ConnectionFacts {
  std::string remote;  // "ip:port"
  int64_t session_id = 0;
  uint64_t received = 0;
  uint64_t sent = 0;
};

struct ServerFacts {
  std::string listen;
  std::string data_dir;
  int64_t max_connections_per_ip = 0;
  int64_t max_request_bytes = 0;
  uint64_t packets_received = 0;
  uint64_t packets_sent = 0;
  std::vector<ConnectionFacts> connections;
  // Asks the kernel ("stats", "watches", "sessions"); "" when it cannot answer.
  std::function<std::string(const char*)> ask;
};

bool isFourLetterWord(std::string_view word);
std::string answerFourLetterWord(std::string_view word, const ServerFacts& facts);

}  // namespace corral::zkwire
