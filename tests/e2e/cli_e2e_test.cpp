// The user story, end to end: a real corrald, and the corral CLI used both one
// command per call and as an interactive shell.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <string>
#include <thread>

#include "child_process.h"
#include "corrald_process.h"
#include "temp_dir.h"

namespace corral::testing {
namespace {

class CliE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<CorraldProcess>(dir_);
    address_ = server_->waitServing();
    ASSERT_FALSE(address_.empty()) << server_->process().output();
  }

  CommandResult cli(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {CorraldProcess::binDir() + "/corral", "-s", address_};
    argv.insert(argv.end(), args.begin(), args.end());
    return runCommand(argv, "", milliseconds(15000));
  }

  std::unique_ptr<ChildProcess> shell(const std::string& name) {
    return std::make_unique<ChildProcess>(
        std::vector<std::string>{CorraldProcess::binDir() + "/corral", "-s", address_},
        dir_.path() + "/" + name + ".log");
  }

  // Repeats a one-shot command until its stderr contains `needle`, up to a deadline.
  bool eventuallyFailsWith(const std::vector<std::string>& args, const std::string& needle) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (std::chrono::steady_clock::now() < deadline) {
      CommandResult r = cli(args);
      if (r.exit_code != 0 && r.stderr_text.find(needle) != std::string::npos) return true;
      std::this_thread::sleep_for(milliseconds(50));
    }
    return false;
  }

  TempDir dir_{"corral-e2e-cli"};
  std::unique_ptr<CorraldProcess> server_;
  std::string address_;
};

TEST_F(CliE2eTest, CreateGetSetDeleteOneCommandPerCall) {
  CommandResult r = cli({"create", "/app", "hello"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.stdout_text.find("Created /app"), std::string::npos) << r.output;

  r = cli({"get", "/app"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.stdout_text, "hello\n");

  r = cli({"set", "/app", "world"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = cli({"get", "-s", "/app"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.stdout_text.find("world"), std::string::npos);
  EXPECT_NE(r.stdout_text.find("dataVersion = 1"), std::string::npos) << r.stdout_text;

  r = cli({"create", "/app", "again"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.stderr_text.find("NODEEXISTS"), std::string::npos) << r.output;

  r = cli({"set", "-v", "7", "/app", "x"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.stderr_text.find("BADVERSION"), std::string::npos) << r.output;

  ASSERT_EQ(cli({"create", "/app/child", ""}).exit_code, 0);
  r = cli({"delete", "/app"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.stderr_text.find("NOTEMPTY"), std::string::npos) << r.output;

  r = cli({"ls", "/app"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.stdout_text, "[child]\n");

  ASSERT_EQ(cli({"deleteall", "/app"}).exit_code, 0);
  r = cli({"get", "/app"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.stderr_text.find("NONODE"), std::string::npos) << r.output;
}

TEST_F(CliE2eTest, SequentialNodesAreNumberedFromParentCversion) {
  ASSERT_EQ(cli({"create", "/q", ""}).exit_code, 0);
  CommandResult a = cli({"create", "-s", "/q/item-", "a"});
  CommandResult b = cli({"create", "-s", "/q/item-", "b"});
  ASSERT_EQ(a.exit_code, 0) << a.output;
  ASSERT_EQ(b.exit_code, 0) << b.output;
  EXPECT_NE(a.stdout_text.find("Created /q/item-0000000000"), std::string::npos) << a.output;
  EXPECT_NE(b.stdout_text.find("Created /q/item-0000000001"), std::string::npos) << b.output;
}

TEST_F(CliE2eTest, EphemeralVanishesWhenItsCliExits) {
  auto owner = shell("owner");
  owner->writeStdin("create -e /lock held\n");
  ASSERT_TRUE(owner->waitForOutput("Created /lock", milliseconds(15000))) << owner->output();

  CommandResult r = cli({"stat", "/lock"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.stdout_text.find("ephemeralOwner = 0x0\n"), std::string::npos) << r.stdout_text;

  owner->writeStdin("quit\n");
  owner->closeStdin();
  ASSERT_TRUE(owner->wait(milliseconds(15000)).has_value());
  EXPECT_TRUE(eventuallyFailsWith({"stat", "/lock"}, "NONODE"));
}

TEST_F(CliE2eTest, WatchSetInOneCliFiresWhenAnotherChangesTheNode) {
  ASSERT_EQ(cli({"create", "/config", "v1"}).exit_code, 0);
  auto watcher = shell("watcher");
  watcher->writeStdin("get -w /config\n");
  ASSERT_TRUE(watcher->waitForOutput("v1", milliseconds(15000))) << watcher->output();

  ASSERT_EQ(cli({"set", "/config", "v2"}).exit_code, 0);
  EXPECT_TRUE(watcher->waitForOutput(
      "WatchedEvent state:SyncConnected type:NodeDataChanged path:/config", milliseconds(15000)))
      << watcher->output();

  watcher->writeStdin("ls -w /\n");
  ASSERT_TRUE(watcher->waitForOutput("config", milliseconds(15000)));
  ASSERT_EQ(cli({"create", "/other", ""}).exit_code, 0);
  EXPECT_TRUE(watcher->waitForOutput(
      "WatchedEvent state:SyncConnected type:NodeChildrenChanged path:/", milliseconds(15000)))
      << watcher->output();
  watcher->writeStdin("quit\n");
  watcher->closeStdin();
  EXPECT_TRUE(watcher->wait(milliseconds(15000)).has_value());
}

TEST_F(CliE2eTest, ServerStopsCleanlyOnSigterm) {
  int status = server_->process().stop(milliseconds(10000));
  EXPECT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0) << server_->process().output();
}

}  // namespace
}  // namespace corral::testing
