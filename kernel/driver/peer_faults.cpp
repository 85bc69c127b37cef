#include "driver/peer_faults.h"

#include <sys/stat.h>

#include <fstream>
#include <sstream>

namespace corral::kernel {

PeerFaults::PeerFaults(std::string path) : path_(std::move(path)) {}

std::map<int64_t, PeerFaults::Rule> PeerFaults::parse(const std::string& text,
                                                      std::vector<std::string>* problems) {
  std::map<int64_t, Rule> rules;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    size_t hash = line.find('#');
    if (hash != std::string::npos) line.erase(hash);
    std::istringstream words(line);
    std::string verb;
    if (!(words >> verb)) continue;
    int64_t peer = 0;
    bool ok = static_cast<bool>(words >> peer) && peer > 0;
    Rule& r = rules[peer];
    if (ok && verb == "cut") {
      r.cut = true;
    } else if (ok && verb == "drop") {
      ok = static_cast<bool>(words >> r.drop) && r.drop >= 0 && r.drop <= 1;
    } else if (ok && verb == "delay") {
      ok = static_cast<bool>(words >> r.delay_ms) && r.delay_ms >= 0;
    } else {
      ok = false;
    }
    std::string extra;
    if (!ok || (words >> extra)) {
      problems->push_back("peer-faults: cannot use \"" + line +
                          "\" (expected: cut ID | drop ID P | delay ID MS)");
      rules.erase(peer);
    }
  }
  return rules;
}

bool PeerFaults::reload(std::string* summary) {
  struct stat st;
  int64_t mtime = -1, size = -1;
  if (::stat(path_.c_str(), &st) == 0) {
    mtime = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    size = st.st_size;
  }
  if (mtime == mtime_ns_ && size == size_) return false;
  mtime_ns_ = mtime;
  size_ = size;
  std::string text;
  if (mtime >= 0) {
    std::ifstream in(path_);
    std::stringstream ss;
    ss << in.rdbuf();
    text = ss.str();
  }
  std::vector<std::string> problems;
  auto rules = parse(text, &problems);
  rules_ = std::move(rules);
  std::string s = rules_.empty() ? "no peer faults" : "peer faults:";
  for (const auto& [peer, r] : rules_) {
    s += " [server " + std::to_string(peer);
    if (r.cut) s += " cut";
    if (r.drop > 0) s += " drop " + std::to_string(r.drop);
    if (r.delay_ms > 0) s += " delay " + std::to_string(r.delay_ms) + "ms";
    s += "]";
  }
  for (const auto& p : problems) s += "; " + p;
  *summary = s;
  return true;
}

bool PeerFaults::drop(int64_t peer) {
  auto it = rules_.find(peer);
  if (it == rules_.end()) return false;
  if (it->second.cut) return true;
  return it->second.drop > 0 &&
         std::uniform_real_distribution<double>(0, 1)(rng_) < it->second.drop;
}

int64_t PeerFaults::delayMs(int64_t peer) const {
  auto it = rules_.find(peer);
  return it == rules_.end() ? 0 : it->second.delay_ms;
}

}  // namespace corral::kernel
