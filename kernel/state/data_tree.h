// The committed znode tree and session table: plain data, mutated only by apply.
#pragma once

#include <corral/proto.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <string_view>
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

// ACL lists shared between nodes (most trees use a handful): a node holds a 4-byte id.
// Reference-counted so that lists no node uses any more are freed.
class AclTable {
 public:
  uint32_t intern(const std::vector<Acl>& acl);  // +1 reference
  // The same from the list's encoding (encodeAcl, as txns carry it; garbage interns the
  // empty list). Remembers the last one: runs of creates with one ACL skip the decoding.
  uint32_t internEncoded(std::string_view encoded);
  void addRef(uint32_t id) { ++refs_[id]; }  // +1 reference to an interned list
  void release(uint32_t id);                 // -1 reference
  const std::vector<Acl>& get(uint32_t id) const { return lists_[id]; }
  size_t size() const { return index_.size(); }

 private:
  std::vector<std::vector<Acl>> lists_;
  std::vector<uint32_t> refs_;
  std::vector<uint32_t> free_;
  std::unordered_map<std::string, uint32_t> index_;  // encodeAcl(list) -> id
  std::string last_encoded_;                         // internEncoded's last list ...
  uint32_t last_id_ = UINT32_MAX;                    // ... and its id (MAX: none)
};

// One znode, kept small: a tree of a million holds a million of these. Its data length is
// stat.data_length; container and TTL nodes are told apart by ephemeralOwner, as ZooKeeper
// encodes them; leaves carry no child list.
class Node {
 public:
  Stat stat;
  uint32_t acl = 0;  // in DataTree::acls

  std::string_view data() const { return {data_.get(), static_cast<size_t>(stat.data_length)}; }
  void setData(std::string_view d) {
    data_.reset();
    if (!d.empty()) {
      data_ = std::make_unique<char[]>(d.size());
      std::memcpy(data_.get(), d.data(), d.size());
    }
    stat.data_length = static_cast<int32_t>(d.size());
  }
  NodeKind kind() const {
    if (stat.ephemeral_owner == kContainerOwner) return NodeKind::kContainer;
    if ((stat.ephemeral_owner & kTtlOwnerTag) == kTtlOwnerTag) return NodeKind::kTtl;
    return NodeKind::kPlain;
  }
  int64_t ttlMs() const { return kind() == NodeKind::kTtl ? stat.ephemeral_owner & kMaxTtlMs : 0; }

  // Child names, sorted: views of the children's own keys in DataTree::nodes, which stay put
  // (the map's nodes never move), so a name is stored once.
  std::span<const std::string_view> children() const {
    if (!children_) return {};
    return std::span<const std::string_view>(children_->names).subspan(children_->head);
  }
  bool hasChildren() const { return children_ && children_->names.size() > children_->head; }

 private:
  friend struct DataTree;
  // Sorted names; the first `head` are already removed. Queues and locks create sequential
  // children at the end and remove them from the front: both stay O(1) amortised instead
  // of moving every other name on each delete.
  struct ChildList {
    std::vector<std::string_view> names;
    size_t head = 0;
  };
  std::unique_ptr<char[]> data_;
  std::unique_ptr<ChildList> children_;
};

struct SessionRecord {
  SessionInfo info;
  std::set<std::string> ephemerals;  // paths
};

struct DataTree {
  std::unordered_map<std::string, Node> nodes;
  AclTable acls;
  std::map<int64_t, SessionRecord> sessions;
  std::set<std::string> containers_and_ttl;  // candidates for server-side cleanup
  int64_t last_zxid = 0;

  DataTree();
  DataTree(DataTree&&) = default;
  DataTree& operator=(DataTree&&) = default;
  DataTree(const DataTree&) = delete;  // children are views into this tree's keys

  const Node* find(const std::string& path) const {
    auto it = nodes.find(path);
    return it == nodes.end() ? nullptr : &it->second;
  }
  Node* find(const std::string& path) {
    auto it = nodes.find(path);
    return it == nodes.end() ? nullptr : &it->second;
  }
  const std::vector<Acl>& aclOf(const Node& n) const { return acls.get(n.acl); }
  // Adds a node (its acl already interned) and links it into its parent's children (and
  // numChildren). Null when the parent does not exist. Other stats are the caller's.
  Node* add(const std::string& path, Node node);
  // The same with the parent already looked up; *key (if given) becomes a view of the node's
  // key in `nodes`, which stays put; *inserted (if given) tells whether the node is new (an
  // existing one is returned unchanged).
  Node* addUnder(Node* parent, const std::string& path, Node node, std::string_view* key = nullptr,
                 bool* inserted = nullptr);
  // Unlinks a childless node from its parent (and its numChildren) and frees it.
  void remove(const std::string& path);
  // Number of descendants (getAllChildrenNumber).
  int32_t descendants(const std::string& path) const;
};

}  // namespace corral::kernel
