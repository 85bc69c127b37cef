// Recovery benchmark: how long a corrald on lmdb takes to start serving with N znodes of
// 100 bytes, and how much memory it holds then.
//
//   corral-recovery-bench [--nodes N] [--runs R]
// Builds the store directly (a snapshot written through the lmdb plugin, as a server that
// took it would leave it), then starts the real corrald R times and reports the time from
// exec to "corrald serving" and the server's resident memory at that point.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "child_process.h"
#include "corrald_process.h"
#include "plugins/plugin_registry.h"
#include "state/state_machine.h"
#include "temp_dir.h"

using namespace corral;
using namespace corral::kernel;
using Clock = std::chrono::steady_clock;

namespace {

int64_t rssKb(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  return -1;
}

// N znodes of 100 bytes under 1000 parents (/b0../b999), as 1000-way fan-out.
std::string buildSnapshot(int64_t nodes, int64_t* last_zxid) {
  StateMachine sm(nullptr, StateLimits{});
  std::vector<Id> ids;
  SessionView who{0, &ids, true};
  int64_t zxid = 0, now = 1'700'000'000'000;
  std::string data(100, 'x');
  const int64_t parents = std::max<int64_t>(1, std::min<int64_t>(1000, nodes / 100));
  auto create = [&](const std::string& path, const std::string& d) {
    Request r;
    r.op.op = OpCode::kCreate;
    r.op.path = path;
    r.op.data = d;
    r.op.acl = {Acl{kPermAll, Id{"world", "anyone"}}};
    sm.apply(sm.prepare(who, r, ++zxid, now));
  };
  for (int64_t p = 0; p < parents; ++p) create("/b" + std::to_string(p), "");
  for (int64_t i = 0; i < nodes - parents; ++i)
    create("/b" + std::to_string(i % parents) + "/n" + std::to_string(i), data);
  *last_zxid = zxid;
  auto t = Clock::now();
  std::string out = sm.snapshot();
  std::cerr << "serialised the snapshot in "
            << std::chrono::duration<double>(Clock::now() - t).count() << " s\n";
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t nodes = 1000000;
  int runs = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--nodes") nodes = std::stoll(argv[i + 1]);
    if (a == "--runs") runs = std::stoi(argv[i + 1]);
  }
  testing::TempDir dir("corral-recovery-bench");
  auto t0 = Clock::now();
  int64_t last_zxid = 0;
  std::string snapshot = buildSnapshot(nodes, &last_zxid);
  auto built = std::chrono::duration<double>(Clock::now() - t0).count();
  std::cerr << "built " << nodes << " znodes in " << built << " s; snapshot "
            << snapshot.size() / 1e6 << " MB\n";

  std::string data_dir = dir.path() + "/data";
  corral_host_api host{};
  host.struct_size = sizeof(host);
  host.data_dir = data_dir.c_str();
  std::filesystem::create_directories(data_dir);
  {
    PluginRegistry registry(testing::CorraldProcess::pluginDir(), &host);
    std::string error;
    StoragePlugin* s = registry.createStorage("lmdb", "", &error);
    char err[512] = {0};
    auto t = Clock::now();
    if (s == nullptr || s->open(ErrorBuf{err, sizeof(err)}) != StorageCode::kOk ||
        s->saveSnapshot(static_cast<uint64_t>(last_zxid),
                        ByteView(snapshot.data(), snapshot.size()),
                        ErrorBuf{err, sizeof(err)}) != StorageCode::kOk) {
      std::cerr << "cannot write the store: " << error << err << "\n";
      return 1;
    }
    std::cerr << "saved it through the lmdb plugin in "
              << std::chrono::duration<double>(Clock::now() - t).count() << " s\n";
  }
  snapshot.clear();
  snapshot.shrink_to_fit();

  testing::CorraldOptions options;
  options.storage = "lmdb";
  std::vector<double> seconds;
  std::vector<int64_t> rss;
  for (int r = 0; r < runs; ++r) {
    auto start = Clock::now();
    testing::CorraldProcess server(dir, options);
    if (server.waitServing(std::chrono::milliseconds(120000)).empty()) {
      std::cerr << "corrald did not start: " << server.process().output() << "\n";
      return 1;
    }
    seconds.push_back(std::chrono::duration<double>(Clock::now() - start).count());
    rss.push_back(rssKb(server.process().pid()));
    server.process().stop();
  }
  std::sort(seconds.begin(), seconds.end());
  std::sort(rss.begin(), rss.end());
  std::printf("| znodes | start-up to serving (min / median / max) | resident memory (median) |\n");
  std::printf("|---|---|---|\n");
  std::printf("| %lld x 100 B | %.2f / %.2f / %.2f s | %.0f MB |\n", static_cast<long long>(nodes),
              seconds.front(), seconds[seconds.size() / 2], seconds.back(),
              rss[rss.size() / 2] / 1024.0);
  return 0;
}
