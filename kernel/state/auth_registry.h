// AuthRegistry: the ACL schemes a server knows (auth provider plugins, by scheme name), the
// kernel's own "auth" pseudo-scheme and the superuser. The state machine asks it whether a
// session's ids grant a permission on a znode and whether an ACL is valid; the server asks
// it to turn addauth credentials and connection addresses into ids.
//
// Not thread-safe: owned and used by the kernel thread. Providers are not owned.
#pragma once

#include <corral/auth.h>
#include <corral/proto.h>

#include <memory>
#include <string>
#include <vector>

namespace corral::kernel {

class AuthRegistry {
 public:
  AuthRegistry();
  ~AuthRegistry();
  AuthRegistry(const AuthRegistry&) = delete;
  AuthRegistry& operator=(const AuthRegistry&) = delete;

  // Registers a provider under its scheme(); false if the scheme is already taken.
  bool add(AuthProvider* provider);
  // "super:<base64 sha1>" as ZooKeeper's superDigest; "" disables the superuser.
  // A session that addauths digest credentials whose id equals it is the superuser.
  void setSuperDigest(std::string super_digest);

  // addauth: kOk and *out = (scheme, id); kAuthFailed for rejected credentials or an
  // unknown scheme (error says which).
  ZkError authenticate(const std::string& scheme, const std::string& credentials, Id* out,
                       std::string* error) const;
  // The ids a connection from remote_addr ("ip:port") has without addauth (e.g. ip).
  std::vector<Id> idsForConnection(const std::string& remote_addr) const;
  bool isSuper(const std::vector<Id>& ids) const;

  // Whether ids (with super_user) hold `perm` on a node whose ACL is `acl`.
  bool allowed(const std::vector<Acl>& acl, const std::vector<Id>* ids, bool super_user,
               int32_t perm) const;
  // Validates an ACL for create/setAcl and expands the "auth" scheme into the session's
  // authenticated ids (ZooKeeper's fixupACL). kOk, or kInvalidAcl.
  ZkError fixupAcl(const std::vector<Acl>& acl, const std::vector<Id>* ids,
                   std::vector<Acl>* out) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace corral::kernel
