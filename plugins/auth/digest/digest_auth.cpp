// The "digest" ACL scheme, as ZooKeeper's DigestAuthenticationProvider: credentials
// "user:password" prove the id "user:" + base64(sha1("user:password")).
#include <corral/auth.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "common/plugin_config.h"

namespace {

using namespace corral;

std::string digestId(std::string_view credentials) {
  size_t colon = credentials.find(':');
  unsigned char sha[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(credentials.data()), credentials.size(), sha);
  unsigned char b64[4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1];
  int n = EVP_EncodeBlock(b64, sha, SHA_DIGEST_LENGTH);
  return std::string(credentials.substr(0, colon)) + ":" +
         std::string(reinterpret_cast<char*>(b64), static_cast<size_t>(n));
}

class DigestAuth final : public AuthProvider {
 public:
  const char* scheme() const noexcept override { return "digest"; }
  AuthCode authenticate(ByteView credentials, TextBuf out, ErrorBuf err) noexcept override {
    std::string_view c = credentials.str();
    if (c.find(':') == std::string_view::npos || c.front() == ':') {
      err.write("digest credentials must be user:password");
      return AuthCode::kFailed;
    }
    out.set(digestId(c));
    return AuthCode::kOk;
  }
  AuthCode idForConnection(ByteView, TextBuf) noexcept override { return AuthCode::kNoIdentity; }
  bool matches(ByteView id, ByteView acl_id) const noexcept override {
    return id.str() == acl_id.str();
  }
  bool isValid(ByteView acl_id) const noexcept override {
    std::string_view s = acl_id.str();
    size_t colon = s.find(':');
    return colon != std::string_view::npos && colon > 0 && colon + 1 < s.size() &&
           s.find(':', colon + 1) == std::string_view::npos;
  }
};

AuthProvider* createDigest(std::string_view config, const corral_host_api*, ErrorBuf err) {
  auto table = corral::plugins::parseConfig(config, err);
  if (!table || !corral::plugins::onlyKnownKeys(*table, {}, "digest auth", err)) return nullptr;
  return new DigestAuth();
}

}  // namespace

CORRAL_DEFINE_PLUGIN(CORRAL_PLUGIN_AUTH, corral::AuthProvider, "digest", "1.0.0", createDigest)
