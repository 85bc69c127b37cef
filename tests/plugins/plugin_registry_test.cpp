// The loader's refusals: each broken plugin gives one line naming the plugin, its path and,
// for version problems, both versions.
#include <gtest/gtest.h>

#include "plugin_test_support.h"
#include "temp_dir.h"

namespace corral::testing {
namespace {

using kernel::PluginRegistry;

class RegistryTest : public ::testing::Test {
 protected:
  std::string fixtures_ = envDir("CORRAL_FIXTURE_DIR");
  std::string plugins_ = envDir("CORRAL_PLUGIN_DIR");
  std::string error_;
};

TEST_F(RegistryTest, LoadsEveryInTreePlugin) {
  PluginRegistry r(plugins_, testHost());
  EXPECT_NE(r.createStorage("memory", "", &error_), nullptr) << error_;
  for (const char* name : {"world", "digest", "ip"}) {
    AuthProvider* p = r.createAuth(name, "", &error_);
    ASSERT_NE(p, nullptr) << error_;
    EXPECT_STREQ(p->scheme(), name);
  }
  EXPECT_NE(r.createClientTransport("zmq", "listen = \"tcp://127.0.0.1:*\"", &error_), nullptr)
      << error_;
}

TEST_F(RegistryTest, MissingPluginNamesThePath) {
  PluginRegistry r(plugins_, testHost());
  EXPECT_EQ(r.createStorage("nosuch", "", &error_), nullptr);
  EXPECT_NE(error_.find("storage plugin 'nosuch'"), std::string::npos) << error_;
  EXPECT_NE(error_.find(plugins_ + "/libcorral_storage_nosuch.so"), std::string::npos) << error_;
  EXPECT_EQ(error_.find('\n'), std::string::npos);
}

TEST_F(RegistryTest, NotASharedLibrary) {
  TempDir dir("corral-registry");
  // Longer than an ELF header, so the dynamic loader reads it and names the problem.
  dir.writeFile("libcorral_auth_junk.so", std::string(256, 'x'));
  PluginRegistry r(dir.path(), testHost());
  EXPECT_EQ(r.createAuth("junk", "", &error_), nullptr);
  EXPECT_NE(error_.find("cannot load " + dir.path() + "/libcorral_auth_junk.so"), std::string::npos)
      << error_;
  // The dynamic loader's own reason (dlerror), not Boost's generic error code.
  EXPECT_NE(error_.find("invalid ELF header"), std::string::npos) << error_;
  EXPECT_EQ(error_.find('\n'), std::string::npos);
}

TEST_F(RegistryTest, MissingEntrySymbol) {
  PluginRegistry r(fixtures_, testHost());
  EXPECT_EQ(r.createAuth("noentry", "", &error_), nullptr);
  EXPECT_NE(error_.find("has no entry symbol corral_plugin_v1"), std::string::npos) << error_;
  EXPECT_NE(error_.find("libcorral_auth_noentry.so"), std::string::npos) << error_;
}

TEST_F(RegistryTest, AbiMismatchNamesBothVersions) {
  PluginRegistry r(fixtures_, testHost());
  EXPECT_EQ(r.createAuth("abi99", "", &error_), nullptr);
  EXPECT_NE(error_.find("auth plugin 'abi99'"), std::string::npos) << error_;
  EXPECT_NE(error_.find("plugin ABI 99.0, this server supports " +
                        std::to_string(CORRAL_PLUGIN_ABI_MAJOR) + "." +
                        std::to_string(CORRAL_PLUGIN_ABI_MINOR)),
            std::string::npos)
      << error_;
}

TEST_F(RegistryTest, BuildFingerprintMismatch) {
  PluginRegistry r(fixtures_, testHost());
  EXPECT_EQ(r.createAuth("otherbuild", "", &error_), nullptr);
  EXPECT_NE(error_.find("build fingerprint mismatch"), std::string::npos) << error_;
  EXPECT_NE(error_.find("some-other-compiler"), std::string::npos) << error_;
}

TEST_F(RegistryTest, WrongKindAndCreateFailure) {
  PluginRegistry r(fixtures_, testHost());
  EXPECT_EQ(r.createAuth("storagekind", "", &error_), nullptr);
  EXPECT_NE(error_.find("is a storage plugin, expected auth"), std::string::npos) << error_;
  EXPECT_EQ(r.createAuth("failing", "", &error_), nullptr);
  EXPECT_NE(error_.find("create failed: unknown config key 'bogus'"), std::string::npos) << error_;
  EXPECT_NE(r.createAuth("good", "", &error_), nullptr) << error_;
}

TEST_F(RegistryTest, PluginsRejectUnknownConfigKeys) {
  PluginRegistry r(plugins_, testHost());
  EXPECT_EQ(r.createStorage("memory", "bogus_option = 1", &error_), nullptr);
  EXPECT_NE(error_.find("bogus_option"), std::string::npos) << error_;
  EXPECT_EQ(r.createClientTransport("zmq", "", &error_), nullptr);
  EXPECT_NE(error_.find("listen"), std::string::npos) << error_;
  EXPECT_EQ(r.createAuth("digest", "x = [", &error_), nullptr);
  EXPECT_NE(error_.find("config line 1"), std::string::npos) << error_;
}

}  // namespace
}  // namespace corral::testing
