#include "state/data_tree.h"

#include "state/path_utils.h"

namespace corral::kernel {

DataTree::DataTree() {
  // The tree every ZooKeeper server starts with: "/", "/zookeeper", "/zookeeper/quota" and
  // "/zookeeper/config", all at zxid 0.
  const std::vector<Acl> open = {Acl{kPermAll, Id{"world", "anyone"}}};
  const std::vector<Acl> read_only = {Acl{kPermRead, Id{"world", "anyone"}}};
  Node root;
  root.acl = open;
  root.children = {"zookeeper"};
  root.stat.num_children = 1;
  nodes.emplace("/", std::move(root));
  Node zk;
  zk.acl = open;
  zk.children = {"config", "quota"};
  zk.stat.num_children = 2;
  nodes.emplace("/zookeeper", std::move(zk));
  Node quota;
  quota.acl = open;
  nodes.emplace("/zookeeper/quota", std::move(quota));
  Node config;
  config.acl = read_only;
  nodes.emplace("/zookeeper/config", std::move(config));
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
    for (const std::string& c : node->children) {
      ++count;
      stack.push_back(childPath(p, c));
    }
  }
  return count;
}

}  // namespace corral::kernel
