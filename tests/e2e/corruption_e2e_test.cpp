// A damaged data dir never yields silently wrong data: copies of a real corrald's lmdb store
// get flipped bytes or are cut short, and each copy either stops corrald at start with one
// clear line naming data.mdb, or serves exactly the data that was written.
#include <corral/client.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>

#include "child_process.h"
#include "corrald_process.h"
#include "temp_dir.h"

namespace corral::testing {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

constexpr int kNodes = 300;
constexpr int kVariants = 24;

std::string nodeData(int i) {
  return "value-" + std::to_string(i) + std::string(i % 50, '*');
}

// Starts corrald on `dir` (its corrald.toml and data); returns "" and fills `served` when it
// serves, or the refusal line.
std::string startAndRead(const TempDir& dir, const CorraldOptions& options,
                         std::map<std::string, std::string>* served) {
  CorraldProcess server(dir, options);
  std::string address = server.waitServing(milliseconds(15000));
  if (address.empty()) {
    server.process().wait(milliseconds(5000));
    std::string out = server.process().output();
    size_t at = out.find("corrald: ");
    return at == std::string::npos ? "no refusal line: " + out
                                   : out.substr(at, out.find('\n', at) - at);
  }
  ClientOptions o;
  o.servers = {address};
  Client c(o);
  EXPECT_EQ(c.connect(), ZkError::kOk) << server.process().output();
  std::vector<std::string> children;
  EXPECT_EQ(c.getChildren("/data", &children), ZkError::kOk);
  for (const std::string& child : children) {
    std::string value;
    EXPECT_EQ(c.getData("/data/" + child, &value), ZkError::kOk);
    (*served)[child] = value;
  }
  return "";
}

TEST(CorruptionE2eTest, DamagedStoresAreRefusedOrServeExactlyWhatWasWritten) {
  TempDir original("corral-e2e-corrupt");
  CorraldOptions options;
  options.storage = "lmdb";
  options.sets = {"server.snapshot_every=100"};
  {
    CorraldProcess server(original, options);
    std::string address = server.waitServing();
    ASSERT_FALSE(address.empty()) << server.process().output();
    ClientOptions o;
    o.servers = {address};
    Client c(o);
    ASSERT_EQ(c.connect(), ZkError::kOk);
    ASSERT_EQ(c.create("/data", "", CreateMode::kPersistent), ZkError::kOk);
    for (int i = 0; i < kNodes; ++i)
      ASSERT_EQ(c.create("/data/n" + std::to_string(i), nodeData(i), CreateMode::kPersistent),
                ZkError::kOk);
    c.close();
    ASSERT_EQ(server.process().stop(), 0);
  }
  std::map<std::string, std::string> expected;
  for (int i = 0; i < kNodes; ++i) expected["n" + std::to_string(i)] = nodeData(i);
  const std::string store = original.path() + "/data/lmdb/data.mdb";
  const auto size = fs::file_size(store);

  std::mt19937_64 rng(0xC0FFEE);
  int refused = 0, intact = 0;
  for (int v = 0; v < kVariants; ++v) {
    TempDir copy("corral-e2e-corrupt-copy");
    fs::copy(original.path() + "/data", copy.path() + "/data", fs::copy_options::recursive);
    std::string damaged = copy.path() + "/data/lmdb/data.mdb";
    std::string what;
    if (v % 6 == 5) {  // cut short
      auto keep = size / 2 + rng() % (size / 2);
      fs::resize_file(damaged, keep);
      what = "truncated to " + std::to_string(keep) + " of " + std::to_string(size) + " bytes";
    } else {  // flipped bytes anywhere, LMDB's meta pages included
      std::fstream f(damaged, std::ios::in | std::ios::out | std::ios::binary);
      int flips = 1 + v % 4;
      for (int k = 0; k < flips; ++k) {
        // Every third variant aims at the meta pages, which LMDB does not checksum.
        auto at = v % 3 == 0 ? rng() % 8192 : rng() % size;
        f.seekg(at);
        char byte = 0;
        f.read(&byte, 1);
        byte ^= static_cast<char>(1 + rng() % 255);
        f.seekp(at);
        f.write(&byte, 1);
        what += "flip@" + std::to_string(at) + " ";
      }
    }
    std::map<std::string, std::string> served;
    std::string refusal = startAndRead(copy, options, &served);
    if (!refusal.empty()) {
      ++refused;
      std::cout << "  " << what << "-> " << refusal << "\n";
      EXPECT_NE(refusal.find("data.mdb"), std::string::npos) << what << ": " << refusal;
    } else {
      ++intact;
      EXPECT_EQ(served, expected) << what << ": served wrong data";
    }
  }
  std::cout << "corruption: " << refused << " damaged copies refused, " << intact
            << " served intact data\n";
}

}  // namespace
}  // namespace corral::testing
