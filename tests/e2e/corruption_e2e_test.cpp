// A damaged data dir never yields silently wrong data: copies of a real corrald's lmdb store
// get flipped bytes or are cut short, and each copy either stops corrald at start with one
// clear line naming the damaged file (data.mdb or a journal segment), or serves exactly the
// data that was written.
#include <corral/client.h>
#include <gtest/gtest.h>

#include <cstring>
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

// XORs the byte at `at` of file with mask (as a bad disk would change it).
void flipByte(const std::string& file, uint64_t at, char mask) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  char byte = 0;
  f.seekg(static_cast<std::streamoff>(at));
  f.read(&byte, 1);
  f.seekp(static_cast<std::streamoff>(at));
  f.write(&(byte ^= mask), 1);
}

// Writes kNodes znodes through a real corrald (snapshots every 100 txns) and stops it.
void writeOriginal(const TempDir& dir, const CorraldOptions& options) {
  CorraldProcess server(dir, options);
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

std::map<std::string, std::string> expectedData() {
  std::map<std::string, std::string> expected;
  for (int i = 0; i < kNodes; ++i) expected["n" + std::to_string(i)] = nodeData(i);
  return expected;
}

TEST(CorruptionE2eTest, DamagedStoresAreRefusedOrServeExactlyWhatWasWritten) {
  TempDir original("corral-e2e-corrupt");
  CorraldOptions options;
  options.storage = "lmdb";
  options.sets = {"server.snapshot_every=100"};
  writeOriginal(original, options);
  if (HasFatalFailure()) return;
  std::map<std::string, std::string> expected = expectedData();
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
      int flips = 1 + v % 4;
      for (int k = 0; k < flips; ++k) {
        // Every third variant aims at the meta pages, which LMDB does not checksum.
        uint64_t at = v % 3 == 0 ? rng() % 8192 : rng() % size;
        flipByte(damaged, at, static_cast<char>(1 + rng() % 255));
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

// The journal: a flipped byte anywhere in its records but the last is caught (the record
// fails its checksum and valid ones follow it) and the segment is named. The last record is
// left alone on purpose: damage there cannot be told from a write cut short by a crash,
// which is cut off at start (lmdb_storage_test covers that case).
TEST(CorruptionE2eTest, DamagedJournalsAreRefusedNamingTheSegment) {
  TempDir original("corral-e2e-journal");
  CorraldOptions options;
  options.storage = "lmdb";
  options.sets = {"server.snapshot_every=100"};
  writeOriginal(original, options);
  if (HasFatalFailure()) return;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(original.path() + "/data/lmdb/journal"))
    files.push_back(e.path());
  ASSERT_EQ(files.size(), 1u);
  std::string segment = files[0].filename().string();
  // Where each record starts: u32 length, u32 crc, u64 zxid, payload; zeros end the segment.
  std::string bytes;
  {
    std::ifstream f(files[0], std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  uint64_t at = 16, last_start = 16;
  while (at + 16 <= bytes.size()) {
    uint32_t len = 0;
    std::memcpy(&len, bytes.data() + at, 4);
    if (len == 0 && bytes.compare(at, 16, std::string(16, '\0')) == 0) break;
    last_start = at;
    at += 16 + len;
  }
  ASSERT_GT(last_start, 1000u) << "the journal should hold the writes";

  std::map<std::string, std::string> expected = expectedData();
  std::mt19937_64 rng(0xFEED);
  for (int v = 0; v < 8; ++v) {
    TempDir copy("corral-e2e-journal-copy");
    fs::copy(original.path() + "/data", copy.path() + "/data", fs::copy_options::recursive);
    std::string damaged = copy.path() + "/data/lmdb/journal/" + segment;
    uint64_t where = 16 + rng() % (last_start - 16);
    flipByte(damaged, where, static_cast<char>(1 + rng() % 255));
    std::map<std::string, std::string> served;
    std::string refusal = startAndRead(copy, options, &served);
    std::cout << "  flip@" << where << " -> " << (refusal.empty() ? "served" : refusal) << "\n";
    if (refusal.empty()) {
      EXPECT_EQ(served, expected) << "flip@" << where << ": served wrong data";
    } else {
      EXPECT_NE(refusal.find(segment), std::string::npos) << refusal;
    }
  }
}

}  // namespace
}  // namespace corral::testing
