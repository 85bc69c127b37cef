// The world, digest and ip ACL schemes, through the real plugins.
#include <gtest/gtest.h>

#include "plugin_test_support.h"

namespace corral::testing {
namespace {

class AuthPluginsTest : public ::testing::Test {
 protected:
  AuthProvider* load(const char* name) {
    AuthProvider* p = registry_.createAuth(name, "", &error_);
    EXPECT_NE(p, nullptr) << error_;
    return p;
  }
  static ByteView v(const std::string& s) { return ByteView(s.data(), s.size()); }
  std::pair<AuthCode, std::string> authenticate(AuthProvider* p, const std::string& creds) {
    char id[256];
    size_t len = 0;
    char err[256] = {0};
    AuthCode code = p->authenticate(v(creds), TextBuf{id, sizeof(id), &len}, ErrorBuf{err, 256});
    return {code, std::string(id, len)};
  }
  std::pair<AuthCode, std::string> forConnection(AuthProvider* p, const std::string& addr) {
    char id[256];
    size_t len = 0;
    AuthCode code = p->idForConnection(v(addr), TextBuf{id, sizeof(id), &len});
    return {code, std::string(id, len)};
  }

  kernel::PluginRegistry registry_{envDir("CORRAL_PLUGIN_DIR"), testHost()};
  std::string error_;
};

TEST_F(AuthPluginsTest, DigestMatchesZooKeepersHash) {
  AuthProvider* d = load("digest");
  ASSERT_NE(d, nullptr);
  // ZooKeeper: DigestAuthenticationProvider.generateDigest("super:test").
  auto [code, id] = authenticate(d, "super:test");
  EXPECT_EQ(code, AuthCode::kOk);
  EXPECT_EQ(id, "super:D/InIHSb7yEEbrWz8b9l71RjZJU=");
  EXPECT_TRUE(d->matches(v(id), v("super:D/InIHSb7yEEbrWz8b9l71RjZJU=")));
  EXPECT_FALSE(d->matches(v(id), v("super:other=")));
  EXPECT_EQ(authenticate(d, "no-colon").first, AuthCode::kFailed);
  EXPECT_TRUE(d->isValid(v("user:hash=")));
  EXPECT_FALSE(d->isValid(v("nohash")));
  EXPECT_EQ(forConnection(d, "1.2.3.4:5").first, AuthCode::kNoIdentity);
}

TEST_F(AuthPluginsTest, IpMatchesAddressesAndBlocks) {
  AuthProvider* ip = load("ip");
  ASSERT_NE(ip, nullptr);
  EXPECT_EQ(forConnection(ip, "10.1.2.3:4567"),
            std::make_pair(AuthCode::kOk, std::string("10.1.2.3")));
  EXPECT_EQ(forConnection(ip, "[::1]:80"), std::make_pair(AuthCode::kOk, std::string("::1")));
  EXPECT_TRUE(ip->matches(v("10.1.2.3"), v("10.1.2.3")));
  EXPECT_TRUE(ip->matches(v("10.1.2.3"), v("10.0.0.0/8")));
  EXPECT_FALSE(ip->matches(v("11.1.2.3"), v("10.0.0.0/8")));
  EXPECT_TRUE(ip->matches(v("192.168.1.77"), v("192.168.1.64/26")));
  EXPECT_FALSE(ip->matches(v("192.168.1.128"), v("192.168.1.64/26")));
  EXPECT_TRUE(ip->matches(v("fe80::1"), v("fe80::/10")));
  EXPECT_FALSE(ip->matches(v("::1"), v("10.0.0.0/8")));
  EXPECT_TRUE(ip->isValid(v("10.0.0.0/8")));
  EXPECT_FALSE(ip->isValid(v("10.0.0.0/33")));
  EXPECT_FALSE(ip->isValid(v("not-an-ip")));
  EXPECT_EQ(authenticate(ip, "10.0.0.1").first, AuthCode::kFailed);
}

TEST_F(AuthPluginsTest, WorldIsAnyone) {
  AuthProvider* w = load("world");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(forConnection(w, "1.2.3.4:5"), std::make_pair(AuthCode::kOk, std::string("anyone")));
  EXPECT_TRUE(w->matches(v("anyone"), v("anyone")));
  EXPECT_TRUE(w->isValid(v("anyone")));
  EXPECT_FALSE(w->isValid(v("someone")));
}

}  // namespace
}  // namespace corral::testing
