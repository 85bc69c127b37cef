// The client's local watch table (ZooKeeper's ZKWatchManager): which callbacks wait on
// which path, registered when a request that set a watch succeeds, and which of them an
// event from the server fires.
#pragma once

#include <corral/client.h>

#include <map>
#include <string>
#include <vector>

namespace corral::client_detail {

class WatchRegistry {
 public:
  // Registers `watch` if `request` asked for one and its result arms it.
  void onResult(const Request& request, const Response& response, const WatchCallback& watch);
  // The callbacks an event fires; one-shot ones are removed.
  std::vector<WatchCallback> fire(const WatchEvent& event);
  bool empty() const;
  // The setWatches request that re-arms everything after a reconnect.
  Op setWatchesOp(int64_t relative_zxid) const;

 private:
  using Table = std::map<std::string, std::vector<WatchCallback>>;
  static void take(Table& t, const std::string& path, std::vector<WatchCallback>* out);
  static void copy(const Table& t, const std::string& path, std::vector<WatchCallback>* out);

  Table data_, exist_, child_, persistent_, recursive_;
};

}  // namespace corral::client_detail
