// corrald's configuration: the documented shape, defaults, --set, and one clear line for
// every kind of mistake.
#include <gtest/gtest.h>

#include "config/config.h"
#include "temp_dir.h"

namespace corral::kernel {
namespace {

using corral::testing::TempDir;

class ConfigTest : public ::testing::Test {
 protected:
  bool load(const std::string& text, const std::vector<std::string>& sets = {}) {
    path_ = dir_.writeFile("corrald.toml", text);
    error_.clear();
    return loadConfig(path_, sets, "/opt/corral/bin", &config_, &error_);
  }

  TempDir dir_{"corral-config-test"};
  std::string path_;
  ServerConfig config_;
  std::string error_;
};

const char kFull[] = R"(
[server]
id = 3
data_dir = "state"
tick_ms = 100
init_limit = 7
sync_limit = 3
max_request_bytes = 2048
plugin_dir = "/plugins"

[ensemble]
servers = ["1=127.0.0.1:2888", "2=127.0.0.1:2889", "3=127.0.0.1:2890"]
observers = ["4=127.0.0.1:2891"]

[storage]
plugin = "lmdb"
[storage.lmdb]
map_size_mb = 64

[client.zmq]
listen = "tcp://127.0.0.1:2281"
[client.zkwire]
listen = "127.0.0.1:2181"

[peer]
plugin = "zmq"

[auth]
providers = ["world", "digest"]
super_digest = "super:abc="
[auth.digest]
)";

TEST_F(ConfigTest, ReadsTheDocumentedShape) {
  ASSERT_TRUE(load(kFull)) << error_;
  EXPECT_EQ(config_.id, 3);
  EXPECT_EQ(config_.data_dir, dir_.path() + "/state");  // relative to the config file
  EXPECT_EQ(config_.tick_ms, 100);
  EXPECT_EQ(config_.init_limit, 7);
  EXPECT_EQ(config_.sync_limit, 3);
  EXPECT_EQ(config_.min_session_timeout_ms, 200);   // 2 ticks
  EXPECT_EQ(config_.max_session_timeout_ms, 2000);  // 20 ticks
  EXPECT_EQ(config_.max_request_bytes, 2048);
  EXPECT_EQ(config_.plugin_dir, "/plugins");
  ASSERT_EQ(config_.voters.size(), 3u);
  EXPECT_EQ(config_.voters[1].id, 2);
  EXPECT_EQ(config_.voters[1].address, "127.0.0.1:2889");
  ASSERT_EQ(config_.observers.size(), 1u);
  EXPECT_FALSE(config_.standalone());
  EXPECT_EQ(config_.storage.name, "lmdb");
  EXPECT_NE(config_.storage.config_toml.find("map_size_mb = 64"), std::string::npos);
  ASSERT_EQ(config_.client_transports.size(), 2u);
  EXPECT_EQ(config_.peer.name, "zmq");
  ASSERT_EQ(config_.auth_providers.size(), 2u);
  EXPECT_EQ(config_.super_digest, "super:abc=");
}

TEST_F(ConfigTest, DefaultsFillWhatIsLeftOut) {
  ASSERT_TRUE(load("[client.zmq]\nlisten = \"tcp://127.0.0.1:1\"\n")) << error_;
  EXPECT_EQ(config_.tick_ms, 200);
  EXPECT_EQ(config_.min_session_timeout_ms, 400);
  EXPECT_EQ(config_.max_session_timeout_ms, 4000);
  EXPECT_EQ(config_.max_request_bytes, 1048575);
  EXPECT_EQ(config_.storage.name, "memory");
  EXPECT_EQ(config_.plugin_dir, "/opt/corral/lib/corral/plugins");  // beside the binary
  EXPECT_EQ(config_.data_dir, dir_.path() + "/data");
  EXPECT_TRUE(config_.standalone());
  ASSERT_EQ(config_.auth_providers.size(), 3u);
}

TEST_F(ConfigTest, SetOverridesAnyKeyWithTomlOrStringValues) {
  ASSERT_TRUE(load(kFull, {"server.tick_ms=50", "server.data_dir=/tmp/x",
                           "client.zmq.listen=tcp://127.0.0.1:9", "auth.providers=[\"world\"]"}))
      << error_;
  EXPECT_EQ(config_.tick_ms, 50);
  EXPECT_EQ(config_.data_dir, "/tmp/x");
  EXPECT_NE(config_.client_transports[1].config_toml.find("tcp://127.0.0.1:9"), std::string::npos);
  EXPECT_EQ(config_.auth_providers.size(), 1u);
}

TEST_F(ConfigTest, MistakesNameTheFileLineAndKey) {
  EXPECT_FALSE(load("[server]\ntick_msx = 5\n[client.zmq]\nlisten = \"x\"\n"));
  EXPECT_NE(error_.find("corrald.toml:2: server.tick_msx: unknown key"), std::string::npos)
      << error_;
  EXPECT_FALSE(load("[server]\n\ntick_ms = \"fast\"\n[client.zmq]\nlisten = \"x\"\n"));
  EXPECT_NE(error_.find(":3: server.tick_ms: expected an integer"), std::string::npos) << error_;
  EXPECT_FALSE(load("[server]\ntick_ms = 0\n[client.zmq]\n"));
  EXPECT_NE(error_.find("server.tick_ms: must be between"), std::string::npos) << error_;
  EXPECT_FALSE(
      load("[server]\nmin_session_timeout_ms = 5000\nmax_session_timeout_ms = 100\n"
           "[client.zmq]\n"));
  EXPECT_NE(error_.find("min_session_timeout_ms"), std::string::npos) << error_;
  EXPECT_FALSE(load("[servers]\n[client.zmq]\n"));
  EXPECT_NE(error_.find("servers: unknown key"), std::string::npos) << error_;
  EXPECT_FALSE(load("[server]\n"));
  EXPECT_NE(error_.find("no client transport"), std::string::npos) << error_;
  EXPECT_FALSE(load("[ensemble]\nservers = [\"one=host\"]\n[client.zmq]\n"));
  EXPECT_NE(error_.find("ID=host:port"), std::string::npos) << error_;
  EXPECT_FALSE(
      load("[server]\nid = 9\n[ensemble]\nservers = [\"1=h:1\", \"2=h:2\"]\n[client.zmq]\n"));
  EXPECT_NE(error_.find("server.id: server 9 is not among ensemble.servers"), std::string::npos)
      << error_;
  EXPECT_FALSE(load("[ensemble]\nservers = [\"1=h:1\", \"1=h:2\"]\n[client.zmq]\n"));
  EXPECT_NE(error_.find("listed twice"), std::string::npos) << error_;
  EXPECT_FALSE(load("[ensemble]\nservers = [\"1=h:1\"]\nobservers = [\"2=h:1\"]\n[client.zmq]\n"));
  EXPECT_NE(error_.find("ensemble.observers: server 2 (h:1)"), std::string::npos) << error_;
  EXPECT_FALSE(load("[ensemble]\nobservers = [\"2=h:1\"]\n[client.zmq]\n"));
  EXPECT_NE(error_.find("observers need ensemble.servers"), std::string::npos) << error_;
  EXPECT_FALSE(load("[auth]\nproviders = [\"world\", \"world\"]\n[client.zmq]\n"));
  EXPECT_NE(error_.find("listed twice"), std::string::npos) << error_;
  EXPECT_FALSE(load("[client]\nzmq = 1\n"));
  EXPECT_NE(error_.find("client.zmq"), std::string::npos) << error_;
}

TEST_F(ConfigTest, SyntaxErrorsAndBadSetsAreReported) {
  EXPECT_FALSE(load("[server\ntick_ms = 1\n"));
  EXPECT_NE(error_.find("corrald.toml:1:"), std::string::npos) << error_;
  EXPECT_FALSE(load(kFull, {"server.tick_ms=-3"}));
  EXPECT_NE(error_.find("(--set): server.tick_ms"), std::string::npos) << error_;
  EXPECT_FALSE(load(kFull, {"no-equals-sign"}));
  EXPECT_NE(error_.find("TABLE.KEY=VALUE"), std::string::npos) << error_;
  EXPECT_FALSE(load(kFull, {"server.bogus=1"}));
  EXPECT_NE(error_.find("server.bogus: unknown key"), std::string::npos) << error_;
  EXPECT_FALSE(load(kFull, {"server.id.x=1"}));
  EXPECT_NE(error_.find("not a table"), std::string::npos) << error_;
  EXPECT_FALSE(loadConfig(dir_.path() + "/missing.toml", {}, "/", &config_, &error_));
  EXPECT_NE(error_.find("missing.toml"), std::string::npos) << error_;
}

}  // namespace
}  // namespace corral::kernel
