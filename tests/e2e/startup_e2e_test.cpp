// corrald's start-up refusals, as an operator sees them: a bad config or a broken plugin
// set-up stops the server with one clear line and a non-zero exit, never a crash or a
// server running on silent defaults.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "child_process.h"
#include "corrald_process.h"
#include "temp_dir.h"

namespace corral::testing {
namespace {

class StartupE2eTest : public ::testing::Test {
 protected:
  // Writes a config (the test default plus `extra`) and runs corrald with `args` appended.
  CommandResult corrald(const std::vector<std::string>& args, const std::string& config) {
    std::string path = dir_.writeFile("corrald.toml", config);
    std::vector<std::string> argv = {CorraldProcess::binDir() + "/corrald"};
    for (const std::string& a : args) argv.push_back(a == "CONFIG" ? path : a);
    return runCommand(argv, "", std::chrono::milliseconds(20000));
  }
  std::string defaultConfig(CorraldOptions options = {}) {
    return CorraldProcess::configText(dir_.path() + "/data", options);
  }

  TempDir dir_{"corral-e2e-startup"};
};

// The single line that explains a refusal.
std::string firstErrorLine(const CommandResult& r) {
  size_t at = r.stderr_text.find("corrald: ");
  if (at == std::string::npos) return "";
  return r.stderr_text.substr(at, r.stderr_text.find('\n', at) - at);
}

TEST_F(StartupE2eTest, CheckConfigAcceptsTheDefaultShapeAndTheShippedConfig) {
  CommandResult r = corrald({"--check-config", "CONFIG"}, defaultConfig());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  std::string shipped = std::string(getenv("CORRAL_SOURCE_DIR")) + "/configs/standalone.toml";
  r = runCommand({CorraldProcess::binDir() + "/corrald", "--check-config", shipped}, "",
                 std::chrono::milliseconds(20000));
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

TEST_F(StartupE2eTest, UnknownKeyIsNamedWithItsLine) {
  CommandResult r = corrald({"--config", "CONFIG"}, defaultConfig() + "\n[server2]\nx = 1\n");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("server2"), std::string::npos) << r.output;
  std::string config = "[server]\ntick_msx = 5\n[client.zmq]\nlisten = \"tcp://127.0.0.1:*\"\n";
  r = corrald({"--check-config", "CONFIG"}, config);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("tick_msx"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(":2"), std::string::npos) << "line number missing: " << r.output;
}

TEST_F(StartupE2eTest, WrongTypesAndBadValuesAreRefused) {
  CommandResult r =
      corrald({"--check-config", "CONFIG", "--set", "server.tick_ms=fast"}, defaultConfig());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("tick_ms"), std::string::npos) << r.output;
  r = corrald({"--check-config", "CONFIG", "--set", "server.tick_ms=-5"}, defaultConfig());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("tick_ms"), std::string::npos) << r.output;
  r = corrald({"--check-config", "CONFIG", "--set", "server.nosuchkey=1"}, defaultConfig());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("nosuchkey"), std::string::npos) << r.output;
  r = corrald({"--check-config", "CONFIG"}, "[server\ntick_ms = 1\n");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_FALSE(r.output.empty());
}

TEST_F(StartupE2eTest, MissingPluginNamesThePluginAndItsPath) {
  CorraldOptions options;
  options.storage = "nosuchstore";
  CommandResult r = corrald({"--config", "CONFIG"}, defaultConfig(options));
  EXPECT_NE(r.exit_code, 0);
  std::string line = firstErrorLine(r);
  EXPECT_NE(line.find("nosuchstore"), std::string::npos) << r.output;
  EXPECT_NE(line.find(CorraldProcess::pluginDir()), std::string::npos) << r.output;
}

TEST_F(StartupE2eTest, PluginDirWithoutPluginsIsRefused) {
  CommandResult r = corrald(
      {"--config", "CONFIG", "--set", "server.plugin_dir=" + dir_.path() + "/empty-plugins"},
      defaultConfig());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(firstErrorLine(r).find("empty-plugins"), std::string::npos) << r.output;
}

TEST_F(StartupE2eTest, BadPluginConfigIsReportedByThePlugin) {
  CommandResult r =
      corrald({"--config", "CONFIG"}, defaultConfig() + "\n[storage.memory]\nbogus_option = 1\n");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("bogus_option"), std::string::npos) << r.output;
}

TEST_F(StartupE2eTest, SetOverridesTheConfigFile) {
  CorraldOptions options;
  options.sets = {"server.tick_ms=30"};
  CorraldProcess server(dir_, options);
  ASSERT_FALSE(server.waitServing().empty()) << server.process().output();
  EXPECT_EQ(server.process().stop(), 0);
}

}  // namespace
}  // namespace corral::testing
