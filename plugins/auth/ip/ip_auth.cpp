// The "ip" ACL scheme, as ZooKeeper's IPAuthenticationProvider: a connection has the id of
// its client address; an ACL id is an address or a CIDR block ("10.0.0.0/8", "fe80::/10").
#include <arpa/inet.h>
#include <corral/auth.h>

#include <cstring>
#include <optional>

#include "common/plugin_config.h"

namespace {

using namespace corral;

struct Address {
  int family = 0;  // AF_INET or AF_INET6
  unsigned char bytes[16] = {0};
  int bits() const { return family == AF_INET ? 32 : 128; }
};

std::optional<Address> parseAddress(std::string_view text) {
  std::string s(text);
  Address a;
  if (inet_pton(AF_INET, s.c_str(), a.bytes) == 1) {
    a.family = AF_INET;
    return a;
  }
  if (inet_pton(AF_INET6, s.c_str(), a.bytes) == 1) {
    a.family = AF_INET6;
    return a;
  }
  return std::nullopt;
}

// "1.2.3.4:5" -> "1.2.3.4"; "[::1]:5" -> "::1"; a bare address stays as it is.
std::string_view hostOf(std::string_view addr) {
  if (!addr.empty() && addr.front() == '[') {
    size_t close = addr.find(']');
    return close == std::string_view::npos ? addr : addr.substr(1, close - 1);
  }
  size_t colon = addr.rfind(':');
  if (colon != std::string_view::npos && addr.find(':') == colon) return addr.substr(0, colon);
  return addr;
}

// An ACL id: address plus prefix length.
bool parseBlock(std::string_view acl_id, Address* addr, int* prefix) {
  size_t slash = acl_id.find('/');
  auto a = parseAddress(acl_id.substr(0, slash));
  if (!a) return false;
  *addr = *a;
  *prefix = a->bits();
  if (slash != std::string_view::npos) {
    std::string_view p = acl_id.substr(slash + 1);
    if (p.empty() || p.size() > 3) return false;
    int v = 0;
    for (char c : p) {
      if (c < '0' || c > '9') return false;
      v = v * 10 + (c - '0');
    }
    if (v > a->bits()) return false;
    *prefix = v;
  }
  return true;
}

class IpAuth final : public AuthProvider {
 public:
  const char* scheme() const noexcept override { return "ip"; }
  AuthCode authenticate(ByteView, TextBuf, ErrorBuf err) noexcept override {
    err.write("the ip scheme is granted by the connection's address, not by addauth");
    return AuthCode::kFailed;
  }
  AuthCode idForConnection(ByteView remote_addr, TextBuf out) noexcept override {
    std::string_view host = hostOf(remote_addr.str());
    if (!parseAddress(host)) return AuthCode::kNoIdentity;
    out.set(host);
    return AuthCode::kOk;
  }
  bool matches(ByteView id, ByteView acl_id) const noexcept override {
    auto a = parseAddress(id.str());
    Address block;
    int prefix = 0;
    if (!a || !parseBlock(acl_id.str(), &block, &prefix) || a->family != block.family) return false;
    for (int bit = 0; bit < prefix; ++bit) {
      unsigned char mask = static_cast<unsigned char>(0x80 >> (bit % 8));
      if ((a->bytes[bit / 8] & mask) != (block.bytes[bit / 8] & mask)) return false;
    }
    return true;
  }
  bool isValid(ByteView acl_id) const noexcept override {
    Address block;
    int prefix = 0;
    return parseBlock(acl_id.str(), &block, &prefix);
  }
};

AuthProvider* createIp(std::string_view config, const corral_host_api*, ErrorBuf err) {
  auto table = corral::plugins::parseConfig(config, err);
  if (!table || !corral::plugins::onlyKnownKeys(*table, {}, "ip auth", err)) return nullptr;
  return new IpAuth();
}

}  // namespace

CORRAL_DEFINE_PLUGIN(CORRAL_PLUGIN_AUTH, corral::AuthProvider, "ip", "1.0.0", createIp)
