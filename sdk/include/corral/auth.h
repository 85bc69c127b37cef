// AuthProvider: one ACL scheme (ZooKeeper's AuthenticationProvider). Implementations:
// plugins/auth/world, plugins/auth/digest, plugins/auth/ip.
//
// A session holds a set of ids (scheme, id). It gains ids from addauth (authenticate()) and,
// for schemes such as ip, from the connection itself (idForConnection()). A znode's ACL is
// a list of (perms, scheme, id-expression); the kernel asks the provider of each entry's
// scheme whether one of the session's ids of that scheme matches the expression.
// The "auth" pseudo-scheme and the superuser are the kernel's, not a provider's.
//
// Thread-safety and cost: every method is called from the kernel thread, on the request
// path. Methods must be fast and must do no I/O and no blocking.
#pragma once

#include <corral/plugin.h>

#include <cstdint>

namespace corral {

// A caller-owned output buffer for a short text value (an id). set() truncates to cap and
// records the length it wrote; it does not NUL-terminate.
struct TextBuf {
  char* data = nullptr;
  size_t cap = 0;
  size_t* len = nullptr;

  void set(std::string_view s) const noexcept {
    size_t n = s.size() < cap ? s.size() : cap;
    if (n > 0) std::memcpy(data, s.data(), n);
    if (len != nullptr) *len = n;
  }
};

enum class AuthCode : int32_t {
  kOk = 0,
  kFailed = 1,     // credentials rejected (the client gets AUTHFAILED)
  kNoIdentity = 2  // no id for this input (e.g. idForConnection of a scheme without one)
};

class AuthProvider {
 public:
  virtual ~AuthProvider() = default;

  // The scheme name, e.g. "digest". NUL-terminated, static for the instance's lifetime.
  virtual const char* scheme() const noexcept = 0;

  // addauth: turns credentials (e.g. "user:password" for digest) into the id the session
  // gains (e.g. "user:<base64 sha1>").
  virtual AuthCode authenticate(ByteView credentials, TextBuf out_id, ErrorBuf err) noexcept = 0;

  // The id a connection from remote_addr ("ip:port") has without addauth (the ip scheme
  // gives "ip"); kNoIdentity for schemes that give none.
  virtual AuthCode idForConnection(ByteView remote_addr, TextBuf out_id) noexcept = 0;

  // Whether the session id `id` of this scheme satisfies the ACL expression `acl_id`.
  virtual bool matches(ByteView id, ByteView acl_id) const noexcept = 0;

  // Whether acl_id is a well-formed ACL expression of this scheme (else INVALIDACL).
  virtual bool isValid(ByteView acl_id) const noexcept = 0;
};

}  // namespace corral
