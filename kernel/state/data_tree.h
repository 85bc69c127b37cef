// The committed znode tree and session table: plain data, mutated only by apply.
#pragma once

#include <corral/proto.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "state/state_machine.h"
#include "state/txn_body.h"

namespace corral::kernel {

// ZooKeeper encodes container and TTL nodes in ephemeralOwner (EphemeralType): clients see
// these values in Stat, so they are kept exactly.
constexpr int64_t kContainerOwner = static_cast<int64_t>(0x8000000000000000ULL);
constexpr int64_t kTtlOwnerTag = static_cast<int64_t>(0xFF00000000000000ULL);
constexpr int64_t kMaxTtlMs = 0xFFFFFFFFFFLL;
inline int64_t ttlOwner(int64_t ttl_ms) {
  return kTtlOwnerTag | ttl_ms;
}
// Only a session's own ephemeral nodes: not containers, not TTL nodes.
inline bool isSessionOwner(int64_t owner) {
  return owner != 0 && owner != kContainerOwner && (owner & kTtlOwnerTag) != kTtlOwnerTag;
}

struct Node {
  std::string data;
  std::vector<Acl> acl;
  Stat stat;
  std::set<std::string> children;  // names, sorted
  NodeKind kind = NodeKind::kPlain;
  int64_t ttl_ms = 0;
};

struct SessionRecord {
  SessionInfo info;
  std::set<std::string> ephemerals;  // paths
};

struct DataTree {
  std::unordered_map<std::string, Node> nodes;
  std::map<int64_t, SessionRecord> sessions;
  std::set<std::string> containers_and_ttl;  // candidates for server-side cleanup
  int64_t last_zxid = 0;

  DataTree();
  const Node* find(const std::string& path) const {
    auto it = nodes.find(path);
    return it == nodes.end() ? nullptr : &it->second;
  }
  Node* find(const std::string& path) {
    auto it = nodes.find(path);
    return it == nodes.end() ? nullptr : &it->second;
  }
  // Number of descendants (getAllChildrenNumber).
  int32_t descendants(const std::string& path) const;
};

}  // namespace corral::kernel
