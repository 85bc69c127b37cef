#include "watch_registry.h"

namespace corral::client_detail {

void WatchRegistry::onResult(const Request& request, const Response& response,
                             const WatchCallback& watch) {
  const Op& op = request.op;
  if (op.op == OpCode::kRemoveWatches && response.err == ZkError::kOk) {
    if (op.watcher_type != WatcherType::kData) child_.erase(op.path);
    if (op.watcher_type != WatcherType::kChildren) {
      data_.erase(op.path);
      exist_.erase(op.path);
    }
    if (op.watcher_type == WatcherType::kAny) {
      persistent_.erase(op.path);
      recursive_.erase(op.path);
    }
    return;
  }
  if (!watch) return;
  switch (op.op) {
    case OpCode::kExists:
      if (response.err == ZkError::kOk)
        data_[op.path].push_back(watch);
      else if (response.err == ZkError::kNoNode)
        exist_[op.path].push_back(watch);
      break;
    case OpCode::kGetData:
      if (response.err == ZkError::kOk) data_[op.path].push_back(watch);
      break;
    case OpCode::kGetChildren:
    case OpCode::kGetChildren2:
      if (response.err == ZkError::kOk) child_[op.path].push_back(watch);
      break;
    case OpCode::kAddWatch:
      if (response.err == ZkError::kOk) {
        Table& t = op.watch_mode == AddWatchMode::kPersistentRecursive ? recursive_ : persistent_;
        t[op.path].push_back(watch);
      }
      break;
    default:
      break;
  }
}

void WatchRegistry::take(Table& t, const std::string& path, std::vector<WatchCallback>* out) {
  auto it = t.find(path);
  if (it == t.end()) return;
  for (auto& cb : it->second) out->push_back(std::move(cb));
  t.erase(it);
}

void WatchRegistry::copy(const Table& t, const std::string& path, std::vector<WatchCallback>* out) {
  auto it = t.find(path);
  if (it != t.end()) out->insert(out->end(), it->second.begin(), it->second.end());
}

std::vector<WatchCallback> WatchRegistry::fire(const WatchEvent& e) {
  std::vector<WatchCallback> out;
  const std::string& path = e.path;
  switch (e.type) {
    case EventType::kNodeCreated:
    case EventType::kNodeDataChanged:
      take(data_, path, &out);
      take(exist_, path, &out);
      break;
    case EventType::kNodeChildrenChanged:
      take(child_, path, &out);
      break;
    case EventType::kNodeDeleted:
      take(data_, path, &out);
      take(exist_, path, &out);
      take(child_, path, &out);
      break;
    default:
      break;
  }
  copy(persistent_, path, &out);
  if (e.type != EventType::kNodeChildrenChanged) {
    // Persistent-recursive watches on the path or any ancestor.
    std::string p = path;
    while (true) {
      copy(recursive_, p, &out);
      if (p == "/" || p.empty()) break;
      size_t slash = p.rfind('/');
      p = slash == 0 ? "/" : p.substr(0, slash);
    }
  }
  return out;
}

bool WatchRegistry::empty() const {
  return data_.empty() && exist_.empty() && child_.empty() && persistent_.empty() &&
         recursive_.empty();
}

Op WatchRegistry::setWatchesOp(int64_t relative_zxid) const {
  Op op;
  op.op = OpCode::kSetWatches2;
  op.relative_zxid = relative_zxid;
  for (const auto& [p, cbs] : data_) op.data_watches.push_back(p);
  for (const auto& [p, cbs] : exist_) op.exist_watches.push_back(p);
  for (const auto& [p, cbs] : child_) op.child_watches.push_back(p);
  for (const auto& [p, cbs] : persistent_) op.persistent_watches.push_back(p);
  for (const auto& [p, cbs] : recursive_) op.persistent_recursive_watches.push_back(p);
  return op;
}

}  // namespace corral::client_detail
