// PeerFaults: network faults injected between this server and chosen peers at run time, so
// tests (and operators rehearsing failures) can partition a real ensemble without root or
// network namespaces. The rules live in a small text file, <data_dir>/peer-faults, which the
// driver re-reads when it changes (`corral-admin faults` writes it):
//
//   cut 2          # drop every message to and from server 2 (the links stay "up")
//   drop 3 0.25    # drop each message to and from server 3 with probability 0.25
//   delay 1 40     # hold messages to server 1 for 40 ms (order kept)
//
// An empty or missing file means no faults. Lines that do not parse are reported once and
// ignored.
#pragma once

#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace corral::kernel {

class PeerFaults {
 public:
  explicit PeerFaults(std::string path);

  // Re-reads the file when its modification time or size changed; returns true (and a
  // description in *summary) when the rules changed.
  bool reload(std::string* summary);
  // Whether a message to / from this peer is lost now.
  bool drop(int64_t peer);
  int64_t delayMs(int64_t peer) const;
  bool any() const { return !rules_.empty(); }

  // Parses rules text; bad lines are described in *problems.
  struct Rule {
    bool cut = false;
    double drop = 0;
    int64_t delay_ms = 0;
  };
  static std::map<int64_t, Rule> parse(const std::string& text, std::vector<std::string>* problems);

 private:
  std::string path_;
  int64_t mtime_ns_ = -1;
  int64_t size_ = -1;
  std::map<int64_t, Rule> rules_;
  std::mt19937_64 rng_{0x5eed};
};

}  // namespace corral::kernel
