// The "hello" ACL scheme: an example of a third-party auth provider.
// `addauth hello alice` gives the session the id hello:alice; an ACL entry hello:alice:r
// grants it read access. (A real provider would check a credential, e.g. a signed token.)
#include <corral/auth.h>

#include <string_view>

namespace {

class HelloAuth final : public corral::AuthProvider {
 public:
  const char* scheme() const noexcept override { return "hello"; }

  corral::AuthCode authenticate(corral::ByteView credentials, corral::TextBuf out_id,
                                corral::ErrorBuf err) noexcept override {
    std::string_view name = credentials.str();
    if (name.empty() || name.find(':') != std::string_view::npos) {
      err.write("hello: credentials must be a name without ':'");
      return corral::AuthCode::kFailed;
    }
    out_id.set(name);
    return corral::AuthCode::kOk;
  }

  corral::AuthCode idForConnection(corral::ByteView, corral::TextBuf) noexcept override {
    return corral::AuthCode::kNoIdentity;
  }

  bool matches(corral::ByteView id, corral::ByteView acl_id) const noexcept override {
    return id.str() == acl_id.str();
  }

  bool isValid(corral::ByteView acl_id) const noexcept override { return acl_id.size > 0; }
};

// The plugin's factory: the config table (TOML text) is ignored, but must be empty.
corral::AuthProvider* createHello(std::string_view config, const corral_host_api*,
                                  corral::ErrorBuf err) {
  if (config.find_first_not_of(" \t\r\n") != std::string_view::npos) {
    err.write("hello: takes no configuration");
    return nullptr;
  }
  return new HelloAuth();
}

}  // namespace

CORRAL_DEFINE_PLUGIN(CORRAL_PLUGIN_AUTH, corral::AuthProvider, "hello", "1.0.0", createHello)
