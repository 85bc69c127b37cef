#include "state/watch_manager.h"

#include "state/path_utils.h"

namespace corral::kernel {

void WatchManager::add(Kind kind, const std::string& path, int64_t session) {
  switch (kind) {
    case Kind::kData:
      data_[path].insert(session);
      break;
    case Kind::kExist:
      exist_[path].insert(session);
      break;
    case Kind::kChild:
      child_[path].insert(session);
      break;
    case Kind::kPersistent:
      persistent_[path].insert(session);
      break;
    case Kind::kRecursive:
      recursive_[path].insert(session);
      break;
  }
}

namespace {
bool eraseFrom(std::unordered_map<std::string, std::set<int64_t>>& t, const std::string& path,
               int64_t session, bool really) {
  auto it = t.find(path);
  if (it == t.end() || it->second.count(session) == 0) return false;
  if (really) {
    it->second.erase(session);
    if (it->second.empty()) t.erase(it);
  }
  return true;
}
}  // namespace

bool WatchManager::remove(const std::string& path, int64_t session, WatcherType type,
                          bool really_remove) {
  bool found = false;
  if (type == WatcherType::kChildren || type == WatcherType::kAny) {
    found |= eraseFrom(child_, path, session, really_remove);
  }
  if (type == WatcherType::kData || type == WatcherType::kAny) {
    found |= eraseFrom(data_, path, session, really_remove);
    found |= eraseFrom(exist_, path, session, really_remove);
  }
  if (type == WatcherType::kAny) {
    found |= eraseFrom(persistent_, path, session, really_remove);
    found |= eraseFrom(recursive_, path, session, really_remove);
  }
  return found;
}

void WatchManager::dropSession(int64_t session) {
  for (Table* t : {&data_, &exist_, &child_, &persistent_, &recursive_}) {
    for (auto it = t->begin(); it != t->end();) {
      it->second.erase(session);
      it = it->second.empty() ? t->erase(it) : std::next(it);
    }
  }
}

void WatchManager::take(Table& t, const std::string& path, std::set<int64_t>* into) {
  auto it = t.find(path);
  if (it == t.end()) return;
  into->insert(it->second.begin(), it->second.end());
  t.erase(it);
}

void WatchManager::peek(const Table& t, const std::string& path, std::set<int64_t>* into) {
  auto it = t.find(path);
  if (it != t.end()) into->insert(it->second.begin(), it->second.end());
}

void WatchManager::recursiveWatchers(const std::string& path, std::set<int64_t>* into) const {
  if (recursive_.empty()) return;
  std::string p = path;
  while (true) {
    peek(recursive_, p, into);
    if (p == "/") break;
    p = std::string(parentPath(p));
  }
}

void WatchManager::emit(const std::set<int64_t>& sessions, EventType type, const std::string& path,
                        int64_t zxid, SessionEvents* out) {
  for (int64_t s : sessions) {
    WatchEvent e;
    e.type = type;
    e.state = KeeperState::kSyncConnected;
    e.path = path;
    e.zxid = zxid;
    out->emplace_back(s, std::move(e));
  }
}

void WatchManager::nodeCreated(const std::string& path, int64_t zxid, SessionEvents* out) {
  std::set<int64_t> who;
  take(exist_, path, &who);
  take(data_, path, &who);
  peek(persistent_, path, &who);
  recursiveWatchers(path, &who);
  emit(who, EventType::kNodeCreated, path, zxid, out);
}

void WatchManager::nodeDeleted(const std::string& path, int64_t zxid, SessionEvents* out) {
  std::set<int64_t> who;
  take(data_, path, &who);
  take(exist_, path, &who);
  take(child_, path, &who);
  peek(persistent_, path, &who);
  recursiveWatchers(path, &who);
  emit(who, EventType::kNodeDeleted, path, zxid, out);
}

void WatchManager::dataChanged(const std::string& path, int64_t zxid, SessionEvents* out) {
  std::set<int64_t> who;
  take(data_, path, &who);
  take(exist_, path, &who);
  peek(persistent_, path, &who);
  recursiveWatchers(path, &who);
  emit(who, EventType::kNodeDataChanged, path, zxid, out);
}

void WatchManager::childrenChanged(const std::string& path, int64_t zxid, SessionEvents* out) {
  // Persistent-recursive watches never see NodeChildrenChanged (ZooKeeper's rule): the
  // NodeCreated / NodeDeleted of the child itself tells them.
  std::set<int64_t> who;
  take(child_, path, &who);
  peek(persistent_, path, &who);
  emit(who, EventType::kNodeChildrenChanged, path, zxid, out);
}

size_t WatchManager::count() const {
  size_t n = 0;
  for (const Table* t : {&data_, &exist_, &child_, &persistent_, &recursive_})
    for (const auto& [path, sessions] : *t) n += sessions.size();
  return n;
}

std::map<int64_t, std::set<std::string>> WatchManager::bySession() const {
  std::map<int64_t, std::set<std::string>> out;
  for (const Table* t : {&data_, &exist_, &child_, &persistent_, &recursive_})
    for (const auto& [path, sessions] : *t)
      for (int64_t s : sessions) out[s].insert(path);
  return out;
}

}  // namespace corral::kernel
