// How a Txn's `fields` describe its effect, per type. prepare() fills them, apply() reads
// them; they hold everything apply needs so that every replica applies the same change.
//
//   kCreate (also create2/container/ttl, normalised to kCreate):
//        [path, data, acl, ephemeral_owner, node_kind, ttl_ms]
//   kDelete / kDeleteContainer:   [path]
//   kSetData:                     [path, data]
//   kSetAcl:                      [path, acl]
//   kCheck:                       [path]                (no effect)
//   kMulti:                       one encoded sub-Txn per op (encodeTxn)
//   kCreateSession:               [timeout_ms, password]
//   kCloseSession:                []                   (the session's ephemerals go)
//   kError:                       [] or, for a failed multi, one error code per op
// Integers are decimal text; ACLs are encodeAcl().
#pragma once

#include <corral/proto.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace corral::kernel {

enum class NodeKind : int32_t { kPlain = 0, kContainer = 1, kTtl = 2 };

std::string encodeAcl(const std::vector<Acl>& acl);
bool decodeAcl(std::string_view bytes, std::vector<Acl>* out);
std::string intField(int64_t v);
bool parseIntField(const std::string& s, int64_t* out);

}  // namespace corral::kernel
