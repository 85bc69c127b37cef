// corral-bench against a real corrald over zkwire: every operation through both drivers
// completes its op bound without errors and leaves no node behind, and an error reply in the
// timed part fails the cell (exit 1), which is what lets bench/compare.py trust a number.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zookeeper/zookeeper.h>

#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "child_process.h"
#include "corrald_process.h"
#include "temp_dir.h"

namespace corral::testing {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr int kOpsPerCell = 300;

// A number field of corral-bench's JSON line ("ops":300), or -1 when it is missing.
double jsonNumber(const std::string& json, const std::string& field) {
  std::smatch m;
  if (!std::regex_search(json, m, std::regex("\"" + field + "\":([-0-9.e+]+)"))) return -1;
  return std::stod(m[1]);
}

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class CorralBenchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
    CorraldOptions o;
    o.extra_toml = "[client.zkwire]\nlisten = \"127.0.0.1:0\"\nmax_connections_per_ip = 60\n";
    server_ = std::make_unique<CorraldProcess>(dir_, o);
    ASSERT_FALSE(server_->waitServing().empty()) << server_->process().output();
    auto at = server_->process().waitForOutput("corrald serving: zkwire on 127.0.0.1:",
                                               milliseconds(10000));
    ASSERT_TRUE(at.has_value()) << server_->process().output();
    hosts_ = "127.0.0.1:" + std::to_string(std::stoi(server_->process().output().substr(*at)));
    zh_ = zookeeper_init(hosts_.c_str(), onSessionEvent, 10000, nullptr, this, 0);
    ASSERT_NE(zh_, nullptr);
    std::unique_lock<std::mutex> lock(mu_);
    ASSERT_TRUE(cv_.wait_for(lock, std::chrono::seconds(10), [&] { return connected_; }));
  }

  void TearDown() override {
    if (zh_ != nullptr) zookeeper_close(zh_);
  }

  static void onSessionEvent(zhandle_t*, int type, int state, const char*, void* ctx) {
    auto* self = static_cast<CorralBenchTest*>(ctx);
    if (type == ZOO_SESSION_EVENT && state == ZOO_CONNECTED_STATE) {
      std::lock_guard<std::mutex> lock(self->mu_);
      self->connected_ = true;
      self->cv_.notify_all();
    }
  }

  std::vector<std::string> benchArgs(const std::string& driver, const std::string& op) const {
    return {CorraldProcess::binDir() + "/corral-bench",
            "--servers",
            hosts_,
            "--driver",
            driver,
            "--op",
            op,
            "--sessions",
            "3",
            "--inflight",
            "4",
            "--size",
            "50",
            "--server-pid",
            std::to_string(server_->process().pid())};
  }

  // The children of "/" whose name starts with "corral-bench-".
  std::vector<std::string> benchRoots() {
    std::vector<std::string> roots;
    String_vector kids{};
    EXPECT_EQ(zoo_get_children(zh_, "/", 0, &kids), ZOK);
    for (int i = 0; i < kids.count; ++i)
      if (std::string(kids.data[i]).rfind("corral-bench-", 0) == 0) roots.push_back(kids.data[i]);
    deallocate_String_vector(&kids);
    return roots;
  }

  TempDir dir_{"corral-bench-test"};
  std::unique_ptr<CorraldProcess> server_;
  std::string hosts_;
  zhandle_t* zh_ = nullptr;
  std::mutex mu_;
  std::condition_variable cv_;
  bool connected_ = false;
};

TEST_F(CorralBenchTest, EveryOpThroughBothDriversRunsItsOpBoundWithoutErrors) {
  for (std::string driver : {"raw", "c"}) {
    for (std::string op : {"create", "set", "get", "exists", "delete", "mixed", "multi"}) {
      SCOPED_TRACE(driver + " " + op);
      std::string json = dir_.path() + "/" + driver + "-" + op + ".json";
      auto args = benchArgs(driver, op);
      args.insert(args.end(),
                  {"--ops", std::to_string(kOpsPerCell), "--seconds", "60", "--json", json});
      CommandResult r = runCommand(args, "", milliseconds(90000));
      ASSERT_EQ(r.exit_code, 0) << r.output;
      std::string line = readFile(json);
      EXPECT_EQ(jsonNumber(line, "errors"), 0) << line;
      EXPECT_EQ(jsonNumber(line, "ops"), kOpsPerCell) << line;
      EXPECT_GT(jsonNumber(line, "ops_per_sec"), 0) << line;
      EXPECT_GT(jsonNumber(line, "p999_ms"), 0) << line;
      EXPECT_GE(jsonNumber(line, "p999_ms"), jsonNumber(line, "p50_ms")) << line;
      EXPECT_NE(r.stdout_text.find("| " + driver + " | " + op + " | 3x4 |"), std::string::npos)
          << r.output;
      EXPECT_TRUE(benchRoots().empty()) << "left behind by " << driver << " " << op;
    }
  }
}

TEST_F(CorralBenchTest, AnErrorReplyFailsTheCell) {
  // The session's node disappears under a running cell: every later set (or multi of sets)
  // gets ZNONODE, and the cell must fail rather than report the errors' speed.
  for (std::string driver : {"raw", "c"}) {
    for (std::string op : {"set", "multi"}) {
      SCOPED_TRACE(driver + " " + op);
      auto args = benchArgs(driver, op);
      args.insert(args.end(), {"--sessions", "1", "--inflight", "1", "--seconds", "4"});
      ChildProcess bench(args, dir_.path() + "/" + driver + "-" + op + "-errors.log");
      std::string node = "/corral-bench-" + std::to_string(bench.pid()) + "/s0";
      auto deadline = Clock::now() + std::chrono::seconds(20);
      int rc = ZNONODE;
      while (Clock::now() < deadline && (rc = zoo_delete(zh_, node.c_str(), -1)) == ZNONODE)
        std::this_thread::sleep_for(milliseconds(5));
      ASSERT_EQ(rc, ZOK) << zerror(rc) << "\n" << bench.output();
      auto status = bench.wait(milliseconds(60000));
      ASSERT_TRUE(status.has_value()) << bench.output();
      ASSERT_TRUE(WIFEXITED(*status)) << bench.output();
      EXPECT_EQ(WEXITSTATUS(*status), 1) << bench.output();
      EXPECT_TRUE(benchRoots().empty()) << bench.output();
    }
  }
}

}  // namespace
}  // namespace corral::testing
