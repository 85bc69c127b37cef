#include "state/auth_registry.h"

#include <algorithm>
#include <map>

namespace corral::kernel {
namespace {
constexpr size_t kMaxIdBytes = 1024;

ByteView view(const std::string& s) {
  return ByteView(s.data(), s.size());
}
}  // namespace

struct AuthRegistry::Impl {
  std::map<std::string, AuthProvider*, std::less<>> providers;
  std::string super_digest;  // "super:<hash>", compared with digest ids

  AuthProvider* find(std::string_view scheme) const {
    auto it = providers.find(scheme);
    return it == providers.end() ? nullptr : it->second;
  }
};

AuthRegistry::AuthRegistry() : impl_(std::make_unique<Impl>()) {}
AuthRegistry::~AuthRegistry() = default;

bool AuthRegistry::add(AuthProvider* provider) {
  return impl_->providers.emplace(provider->scheme(), provider).second;
}

void AuthRegistry::setSuperDigest(std::string super_digest) {
  impl_->super_digest = std::move(super_digest);
}

ZkError AuthRegistry::authenticate(const std::string& scheme, const std::string& credentials,
                                   Id* out, std::string* error) const {
  AuthProvider* p = impl_->find(scheme);
  if (p == nullptr) {
    *error = "no auth provider for scheme '" + scheme + "'";
    return ZkError::kAuthFailed;
  }
  char id[kMaxIdBytes];
  size_t len = 0;
  char err[256] = {0};
  AuthCode code =
      p->authenticate(view(credentials), TextBuf{id, sizeof(id), &len}, ErrorBuf{err, sizeof(err)});
  if (code != AuthCode::kOk) {
    *error = err[0] ? err : "authentication failed for scheme '" + scheme + "'";
    return ZkError::kAuthFailed;
  }
  out->scheme = scheme;
  out->id.assign(id, len);
  return ZkError::kOk;
}

std::vector<Id> AuthRegistry::idsForConnection(const std::string& remote_addr) const {
  std::vector<Id> ids;
  for (const auto& [scheme, p] : impl_->providers) {
    char id[kMaxIdBytes];
    size_t len = 0;
    if (p->idForConnection(view(remote_addr), TextBuf{id, sizeof(id), &len}) == AuthCode::kOk)
      ids.push_back(Id{scheme, std::string(id, len)});
  }
  return ids;
}

bool AuthRegistry::isSuper(const std::vector<Id>& ids) const {
  if (impl_->super_digest.empty()) return false;
  return std::any_of(ids.begin(), ids.end(), [&](const Id& id) {
    return id.scheme == "digest" && id.id == impl_->super_digest;
  });
}

bool AuthRegistry::allowed(const std::vector<Acl>& acl, const std::vector<Id>* ids, bool super_user,
                           int32_t perm) const {
  if (super_user || acl.empty()) return true;
  for (const Acl& a : acl) {
    if ((a.perms & perm) == 0) continue;
    if (a.id.scheme == "world" && a.id.id == "anyone") return true;
    if (ids == nullptr) continue;
    AuthProvider* p = impl_->find(a.id.scheme);
    if (p == nullptr) continue;
    for (const Id& id : *ids) {
      if (id.scheme == a.id.scheme && p->matches(view(id.id), view(a.id.id))) return true;
    }
  }
  return false;
}

ZkError AuthRegistry::fixupAcl(const std::vector<Acl>& acl, const std::vector<Id>* ids,
                               std::vector<Acl>* out) const {
  out->clear();
  if (acl.empty()) return ZkError::kInvalidAcl;
  auto add = [&](Acl a) {
    if (std::find(out->begin(), out->end(), a) == out->end()) out->push_back(std::move(a));
  };
  for (const Acl& a : acl) {
    if (a.perms < 0 || a.perms > kPermAll) return ZkError::kInvalidAcl;
    if (a.id.scheme == "world") {
      if (a.id.id != "anyone") return ZkError::kInvalidAcl;
      add(a);
    } else if (a.id.scheme == "auth") {
      // Every id the session proved with credentials (ZooKeeper: the authenticated
      // schemes; ip ids come from the address, not from credentials).
      bool any = false;
      if (ids != nullptr) {
        for (const Id& id : *ids) {
          if (id.scheme == "world" || id.scheme == "ip" || id.scheme == "super") continue;
          add(Acl{a.perms, id});
          any = true;
        }
      }
      if (!any) return ZkError::kInvalidAcl;
    } else {
      AuthProvider* p = impl_->find(a.id.scheme);
      if (p == nullptr || !p->isValid(view(a.id.id))) return ZkError::kInvalidAcl;
      add(a);
    }
  }
  return ZkError::kOk;
}

}  // namespace corral::kernel
