#include "state/data_tree.h"

#include <algorithm>

#include "state/path_utils.h"

namespace corral::kernel {

uint32_t AclTable::intern(const std::vector<Acl>& acl) {
  std::string key = encodeAcl(acl);
  auto it = index_.find(key);
  if (it != index_.end()) {
    ++refs_[it->second];
    return it->second;
  }
  uint32_t id;
  if (!free_.empty()) {
    id = free_.back();
    free_.pop_back();
    lists_[id] = acl;
    refs_[id] = 1;
  } else {
    id = static_cast<uint32_t>(lists_.size());
    lists_.push_back(acl);
    refs_.push_back(1);
  }
  index_.emplace(std::move(key), id);
  return id;
}

uint32_t AclTable::internEncoded(std::string_view encoded) {
  if (last_id_ != UINT32_MAX && encoded == last_encoded_) {
    ++refs_[last_id_];
    return last_id_;
  }
  std::vector<Acl> acl;
  if (!decodeAcl(encoded, &acl)) acl.clear();
  uint32_t id = intern(acl);
  last_encoded_.assign(encoded);
  last_id_ = id;
  return id;
}

void AclTable::release(uint32_t id) {
  if (id >= refs_.size() || refs_[id] == 0 || --refs_[id] > 0) return;
  if (id == last_id_) last_id_ = UINT32_MAX;
  index_.erase(encodeAcl(lists_[id]));
  lists_[id].clear();
  free_.push_back(id);
}

DataTree::DataTree() {
  // The tree every ZooKeeper server starts with: "/", "/zookeeper", "/zookeeper/quota" and
  // "/zookeeper/config", all at zxid 0.
  const std::vector<Acl> open = {Acl{kPermAll, Id{"world", "anyone"}}};
  const std::vector<Acl> read_only = {Acl{kPermRead, Id{"world", "anyone"}}};
  Node root;
  root.acl = acls.intern(open);
  nodes.emplace("/", std::move(root));
  for (const char* path : {"/zookeeper", "/zookeeper/config", "/zookeeper/quota"}) {
    Node n;
    n.acl = acls.intern(std::string(path) == "/zookeeper/config" ? read_only : open);
    add(path, std::move(n));
  }
}

Node* DataTree::add(const std::string& path, Node node) {
  if (path == "/") return &nodes.emplace(path, std::move(node)).first->second;
  return addUnder(find(std::string(parentPath(path))), path, std::move(node));
}

Node* DataTree::addUnder(Node* parent, const std::string& path, Node node, std::string_view* key,
                         bool* inserted) {
  if (parent == nullptr) return nullptr;
  auto [it, is_new] = nodes.emplace(path, std::move(node));  // parent stays put: node-based
  if (key != nullptr) *key = it->first;
  if (inserted != nullptr) *inserted = is_new;
  if (!is_new) return &it->second;
  std::string_view name = baseName(it->first);  // a view of the key, which stays put too
  parent->stat.num_children++;
  if (!parent->children_) parent->children_ = std::make_unique<Node::ChildList>();
  auto& c = parent->children_->names;
  auto first = c.begin() + static_cast<std::ptrdiff_t>(parent->children_->head);
  if (first == c.end() || c.back() < name)
    c.push_back(name);  // the usual case: appended in order
  else
    c.insert(std::lower_bound(first, c.end(), name), name);
  return &it->second;
}

void DataTree::remove(const std::string& path) {
  auto it = nodes.find(path);
  if (it == nodes.end()) return;
  Node* parent = path == "/" ? nullptr : find(std::string(parentPath(path)));
  if (parent != nullptr) {
    std::string_view name = baseName(path);
    if (parent->children_) {
      auto& list = *parent->children_;
      auto& c = list.names;
      auto first = c.begin() + static_cast<std::ptrdiff_t>(list.head);
      auto pos = std::lower_bound(first, c.end(), name);
      if (pos != c.end() && *pos == name) {
        if (pos == first) {
          ++list.head;  // the oldest child of a queue: no names move
        } else {
          c.erase(pos);
        }
        parent->stat.num_children--;
      }
      if (list.head == c.size()) {
        parent->children_.reset();
      } else if (list.head >= 64 && list.head * 2 >= c.size()) {
        c.erase(c.begin(), c.begin() + static_cast<std::ptrdiff_t>(list.head));
        list.head = 0;
      }
    }
  }
  acls.release(it->second.acl);
  nodes.erase(it);
}

int32_t DataTree::descendants(const std::string& path) const {
  const Node* n = find(path);
  if (n == nullptr) return 0;
  int32_t count = 0;
  std::vector<std::string> stack = {path};
  while (!stack.empty()) {
    std::string p = std::move(stack.back());
    stack.pop_back();
    const Node* node = find(p);
    if (node == nullptr) continue;
    for (std::string_view c : node->children()) {
      ++count;
      stack.push_back(childPath(p, c));
    }
  }
  return count;
}

}  // namespace corral::kernel
