// Durability under fire: a real corrald on the lmdb storage, written to by concurrent
// clients, is killed with SIGKILL at random moments, again and again. After every restart,
// every write a client saw acknowledged is there with its exact data and version, zxids go
// on rising, and the ephemerals of the dead sessions go once their timeout passes.
#include <corral/client.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "corrald_process.h"
#include "temp_dir.h"

namespace corral::testing {
namespace {

using std::chrono::milliseconds;

constexpr int kWriters = 4;
constexpr int kRounds = 6;

// What the clients were told is durable.
struct Acked {
  std::mutex mu;
  std::map<std::string, std::string> created;  // path -> data
  std::map<int, int32_t> counter_version;      // writer -> last acknowledged version of /c<w>
  int64_t max_zxid = 0;

  void create(const std::string& path, const std::string& data, int64_t zxid) {
    std::lock_guard<std::mutex> lock(mu);
    created[path] = data;
    max_zxid = std::max(max_zxid, zxid);
  }
  void set(int writer, int32_t version, int64_t zxid) {
    std::lock_guard<std::mutex> lock(mu);
    counter_version[writer] = std::max(counter_version[writer], version);
    max_zxid = std::max(max_zxid, zxid);
  }
};

std::unique_ptr<Client> connect(const std::string& address, int32_t timeout_ms = 5000) {
  ClientOptions o;
  o.servers = {address};
  o.session_timeout_ms = timeout_ms;
  o.request_timeout = milliseconds(2000);
  o.connect_timeout = milliseconds(5000);
  auto c = std::make_unique<Client>(o);
  if (c->connect() != ZkError::kOk) return nullptr;
  return c;
}

// One writer: creates /w<id>/<n> and bumps /c<id>, recording only what was acknowledged.
void writer(int id, const std::string& address, std::atomic<bool>* stop, Acked* acked, int round) {
  auto c = connect(address);
  if (!c) return;
  for (int n = 0; !stop->load(); ++n) {
    std::string path =
        "/w" + std::to_string(id) + "/r" + std::to_string(round) + "-" + std::to_string(n);
    std::string data =
        "data-" + std::to_string(id) + "-" + std::to_string(round) + "-" + std::to_string(n);
    Stat stat;
    if (c->create(path, data, CreateMode::kPersistent, nullptr, &stat) == ZkError::kOk) {
      acked->create(path, data, stat.czxid);
    }
    Stat before;
    if (c->exists("/c" + std::to_string(id), &before) != ZkError::kOk) continue;
    // The counter's data is always its own version, so a lost or doubled write shows.
    if (c->setData("/c" + std::to_string(id), std::to_string(before.version + 1), before.version,
                   &stat) == ZkError::kOk) {
      acked->set(id, stat.version, stat.mzxid);
    }
  }
}

TEST(CrashE2eTest, AcknowledgedWritesSurviveRepeatedSigkill) {
  TempDir dir("corral-e2e-crash");
  CorraldOptions options;
  options.storage = "lmdb";
  options.sets = {"server.snapshot_every=300"};  // snapshots are taken and reloaded too
  CorraldProcess server(dir, options);
  std::string address = server.waitServing();
  ASSERT_FALSE(address.empty()) << server.process().output();
  {
    auto setup = connect(address);
    ASSERT_TRUE(setup);
    for (int w = 0; w < kWriters; ++w) {
      ASSERT_EQ(setup->create("/w" + std::to_string(w), "", CreateMode::kPersistent), ZkError::kOk);
      ASSERT_EQ(setup->create("/c" + std::to_string(w), "0", CreateMode::kPersistent),
                ZkError::kOk);
    }
  }

  Acked acked;
  std::mt19937 rng(20261123);
  for (int round = 0; round < kRounds; ++round) {
    // A session that dies with the server: its ephemeral must go after its timeout.
    auto doomed = connect(address, 1000);
    ASSERT_TRUE(doomed);
    std::string eph = "/eph-" + std::to_string(round);
    ASSERT_EQ(doomed->create(eph, "", CreateMode::kEphemeral), ZkError::kOk);

    std::atomic<bool> stop{false};
    std::vector<std::thread> writers;
    for (int w = 0; w < kWriters; ++w)
      writers.emplace_back(writer, w, address, &stop, &acked, round);
    std::this_thread::sleep_for(milliseconds(150 + rng() % 500));
    server.process().signal(SIGKILL);
    ASSERT_TRUE(server.process().wait(milliseconds(10000)).has_value());
    stop = true;
    for (auto& t : writers) t.join();
    doomed.reset();

    server.restart();
    address = server.waitServing();
    ASSERT_FALSE(address.empty()) << server.process().output();
    auto check = connect(address);
    ASSERT_TRUE(check) << "round " << round;

    std::lock_guard<std::mutex> lock(acked.mu);
    ASSERT_GT(acked.created.size(), 0u) << "round " << round << ": nothing was acknowledged";
    for (const auto& [path, data] : acked.created) {
      std::string got;
      ASSERT_EQ(check->getData(path, &got), ZkError::kOk) << "round " << round << ": lost " << path;
      ASSERT_EQ(got, data) << path;
    }
    for (const auto& [w, version] : acked.counter_version) {
      std::string got;
      Stat stat;
      ASSERT_EQ(check->getData("/c" + std::to_string(w), &got, &stat), ZkError::kOk);
      EXPECT_GE(stat.version, version) << "round " << round << ": counter " << w << " went back";
      EXPECT_EQ(got, std::to_string(stat.version)) << "counter " << w;
    }
    std::cout << "round " << round << ": " << acked.created.size()
              << " acknowledged creates verified after SIGKILL\n";
    // zxids keep rising across the restart.
    Stat fresh;
    ASSERT_EQ(check->create("/round-" + std::to_string(round), "", CreateMode::kPersistent, nullptr,
                            &fresh),
              ZkError::kOk);
    EXPECT_GT(fresh.czxid, acked.max_zxid) << "round " << round;
    acked.max_zxid = fresh.czxid;

    // The dead session's ephemeral goes once its timeout has passed (it has no client now).
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (check->exists(eph) == ZkError::kOk && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(milliseconds(50));
    EXPECT_EQ(check->exists(eph), ZkError::kNoNode) << "round " << round;
  }
}

}  // namespace
}  // namespace corral::testing
