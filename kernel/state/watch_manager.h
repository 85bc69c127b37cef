// WatchManager: which session watches what, and which events a change fires
// (ZooKeeper's WatchManager rules: one-shot data/exist/child watches, persistent and
// persistent-recursive watches, one event per session per change).
#pragma once

#include <corral/proto.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace corral::kernel {

using SessionEvents = std::vector<std::pair<int64_t, WatchEvent>>;

class WatchManager {
 public:
  enum class Kind { kData, kExist, kChild, kPersistent, kRecursive };

  void add(Kind kind, const std::string& path, int64_t session);
  // removeWatches / checkWatches: true when a matching watch existed (and, if remove, is
  // now gone).
  bool remove(const std::string& path, int64_t session, WatcherType type, bool really_remove);
  void dropSession(int64_t session);

  // The node at `path` was created / deleted / changed: appends the events, in order.
  void nodeCreated(const std::string& path, int64_t zxid, SessionEvents* out);
  void nodeDeleted(const std::string& path, int64_t zxid, SessionEvents* out);
  void dataChanged(const std::string& path, int64_t zxid, SessionEvents* out);
  void childrenChanged(const std::string& path, int64_t zxid, SessionEvents* out);

  size_t count() const;
  // Every session's watched paths (sorted), for operators.
  std::map<int64_t, std::set<std::string>> bySession() const;

 private:
  using Table = std::unordered_map<std::string, std::set<int64_t>>;
  // One-shot: taken (removed) as they fire.
  static void take(Table& t, const std::string& path, std::set<int64_t>* into);
  static void peek(const Table& t, const std::string& path, std::set<int64_t>* into);
  void recursiveWatchers(const std::string& path, std::set<int64_t>* into) const;
  static void emit(const std::set<int64_t>& sessions, EventType type, const std::string& path,
                   int64_t zxid, SessionEvents* out);

  Table data_, exist_, child_, persistent_, recursive_;
};

}  // namespace corral::kernel
