// corral-admin on a real server's stopped data dir: verify, dump-log, dump-snapshot.
#include <corral/client.h>
#include <gtest/gtest.h>

#include <fstream>

#include "child_process.h"
#include "corrald_process.h"
#include "temp_dir.h"

namespace corral::testing {
namespace {

using std::chrono::milliseconds;

TEST(AdminE2eTest, VerifiesAndDumpsAStoppedServersStore) {
  TempDir dir("corral-e2e-admin");
  CorraldOptions options;
  options.storage = "lmdb";
  options.sets = {"server.snapshot_every=10"};
  CorraldProcess server(dir, options);
  std::string address = server.waitServing();
  ASSERT_FALSE(address.empty()) << server.process().output();
  {
    ClientOptions o;
    o.servers = {address};
    Client c(o);
    ASSERT_EQ(c.connect(), ZkError::kOk);
    for (int i = 0; i < 15; ++i)
      ASSERT_EQ(c.create("/node" + std::to_string(i), "payload-" + std::to_string(i),
                         CreateMode::kPersistent),
                ZkError::kOk);
    ASSERT_EQ(c.setData("/node3", "changed"), ZkError::kOk);
  }
  // Snapshots are written in the background: wait for one before stopping.
  ASSERT_TRUE(server.process().waitForOutput(" bytes in ", milliseconds(10000)).has_value())
      << server.process().output();
  ASSERT_EQ(server.process().stop(), 0);

  auto admin = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {CorraldProcess::binDir() + "/corral-admin", "--config",
                                     server.configPath()};
    argv.insert(argv.end(), args.begin(), args.end());
    return runCommand(argv, "", milliseconds(30000));
  };
  CommandResult r = admin({"verify"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.stdout_text.find("ok: "), std::string::npos) << r.output;
  EXPECT_NE(r.stdout_text.find("19 znodes"), std::string::npos) << r.output;  // 15 + 4 built in

  r = admin({"dump-log"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.stdout_text.find("setData /node3 data=\"changed\""), std::string::npos) << r.output;

  r = admin({"dump-snapshot", "--data"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.stdout_text.find("/node0 "), std::string::npos) << r.output;
  EXPECT_NE(r.stdout_text.find("data=\"payload-0\""), std::string::npos) << r.output;

  // A damaged store fails verification with the file named.
  std::string store = dir.path() + "/data/lmdb/data.mdb";
  {
    std::fstream f(store, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(0, std::ios::end);
    auto size = static_cast<std::streamoff>(f.tellg());
    for (std::streamoff at = 8192; at < size; at += 997) {
      f.seekp(at);
      f.put('\x5a');
    }
  }
  r = admin({"verify"});
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.stderr_text.find("data.mdb"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace corral::testing
