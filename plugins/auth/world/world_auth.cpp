// The "world" ACL scheme: a single id, "anyone", that every session has.
#include <corral/auth.h>

#include "common/plugin_config.h"

namespace {

using namespace corral;

class WorldAuth final : public AuthProvider {
 public:
  const char* scheme() const noexcept override { return "world"; }
  AuthCode authenticate(ByteView, TextBuf, ErrorBuf err) noexcept override {
    err.write("the world scheme takes no credentials");
    return AuthCode::kFailed;
  }
  AuthCode idForConnection(ByteView, TextBuf out) noexcept override {
    out.set("anyone");
    return AuthCode::kOk;
  }
  bool matches(ByteView, ByteView acl_id) const noexcept override {
    return acl_id.str() == "anyone";
  }
  bool isValid(ByteView acl_id) const noexcept override { return acl_id.str() == "anyone"; }
};

AuthProvider* createWorld(std::string_view config, const corral_host_api*, ErrorBuf err) {
  auto table = corral::plugins::parseConfig(config, err);
  if (!table || !corral::plugins::onlyKnownKeys(*table, {}, "world auth", err)) return nullptr;
  return new WorldAuth();
}

}  // namespace

CORRAL_DEFINE_PLUGIN(CORRAL_PLUGIN_AUTH, corral::AuthProvider, "world", "1.0.0", createWorld)
