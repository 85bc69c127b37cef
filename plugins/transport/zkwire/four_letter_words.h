// ZooKeeper's four-letter words (ruok, srvr, stat, mntr, conf, cons, envi, wchs, dump, isro),
// answered on the client port from what the transport itself knows. Counts that only the
// kernel knows (znodes, watches) are not available to a transport and are left out.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace corral::zkwire {

struct ServerFacts {
  std::string listen;
  size_t connections = 0;
  int64_t max_connections_per_ip = 0;
  int64_t max_request_bytes = 0;
  uint64_t packets_received = 0;
  uint64_t packets_sent = 0;
  int64_t last_zxid = 0;
};

bool isFourLetterWord(std::string_view word);
std::string answerFourLetterWord(std::string_view word, const ServerFacts& facts);

}  // namespace corral::zkwire
