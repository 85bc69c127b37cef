// corral-failover-bench: how long a 3-voter ensemble on 127.0.0.1 is unable to write when
// its leader dies (SIGKILL) or hangs (SIGSTOP): from the signal to the first successful
// write through a surviving server, min / median / max over repeated trials.
//
//   corral-failover-bench [--trials N] [--tick-ms T] [--init-limit I] [--sync-limit S]
//                         [--storage lmdb|memory]
//
// Needs CORRAL_BIN_DIR and CORRAL_PLUGIN_DIR (bench/failover.sh sets them).
#include <corral/client.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "ensemble.h"

namespace {

using namespace corral;
using namespace corral::testing;
using Clock = std::chrono::steady_clock;

double msSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// One trial: returns the failover time in ms, or a negative number on failure.
double trial(Ensemble& e, bool hang, int n) {
  int leader = e.waitLeader(std::chrono::seconds(30));
  if (leader == 0) return -1;
  std::vector<int> survivors;
  for (int id : e.ids())
    if (id != leader) survivors.push_back(id);
  ClientOptions o;
  o.servers = e.nativeAddresses(survivors);
  o.session_timeout_ms = 10000;
  o.connect_timeout = std::chrono::milliseconds(10000);
  o.request_timeout = std::chrono::milliseconds(1000);
  Client c(o);
  if (c.connect() != ZkError::kOk) return -2;
  if (c.create("/warm-" + std::to_string(n), "", CreateMode::kPersistent) != ZkError::kOk)
    return -3;
  auto t0 = Clock::now();
  if (hang) {
    e.pause(leader);
  } else {
    e.kill(leader);
  }
  double took = -4;
  for (int attempt = 0; msSince(t0) < 30000; ++attempt) {
    std::string path = "/failover-" + std::to_string(n) + "-" + std::to_string(attempt);
    ZkError r = c.create(path, "", CreateMode::kPersistent);
    if (r == ZkError::kOk) {
      took = msSince(t0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  if (hang) {
    e.resume(leader);
  } else {
    e.start(leader);
  }
  if (!e.waitServing(leader, std::chrono::seconds(30))) return -5;
  return took;
}

void report(const char* what, std::vector<double> v) {
  std::sort(v.begin(), v.end());
  if (v.empty()) {
    std::printf("%-22s no successful trial\n", what);
    return;
  }
  double median = v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  std::printf("%-22s trials %2zu   min %6.0f ms   median %6.0f ms   max %6.0f ms\n", what, v.size(),
              v.front(), median, v.back());
}

}  // namespace

int main(int argc, char** argv) {
  int trials = 10;
  EnsembleOptions o;
  o.tick_ms = 200;
  o.init_limit = 10;
  o.sync_limit = 5;
  o.min_session_timeout_ms = 400;
  o.max_session_timeout_ms = 40000;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i], v = argv[i + 1];
    if (a == "--trials")
      trials = std::atoi(v.c_str());
    else if (a == "--tick-ms")
      o.tick_ms = std::atoi(v.c_str());
    else if (a == "--init-limit")
      o.init_limit = std::atoi(v.c_str());
    else if (a == "--sync-limit")
      o.sync_limit = std::atoi(v.c_str());
    else if (a == "--storage")
      o.storage = v;
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  TempDir dir("corral-failover");
  Ensemble e(dir, o);
  e.startAll();
  std::printf("3 voters on 127.0.0.1, tick_ms %d, init_limit %d, sync_limit %d, storage %s\n",
              o.tick_ms, o.init_limit, o.sync_limit, o.storage.c_str());
  std::vector<double> killed, hung;
  int failures = 0;
  for (int n = 0; n < 2 * trials; ++n) {
    bool hang = n % 2 == 1;  // alternate, so both see the same machine conditions
    double ms = trial(e, hang, n);
    if (ms < 0) {
      std::fprintf(stderr, "trial %d (%s) failed: %.0f\n", n, hang ? "SIGSTOP" : "SIGKILL", ms);
      ++failures;
      continue;
    }
    (hang ? hung : killed).push_back(ms);
    if (std::getenv("CORRAL_FAILOVER_SLOW_MS") != nullptr &&
        ms > std::atof(std::getenv("CORRAL_FAILOVER_SLOW_MS"))) {
      std::printf("trial %d (%s) took %.0f ms; the servers' logs:\n", n,
                  hang ? "SIGSTOP" : "SIGKILL", ms);
      printServerLogTails(dir, 25);
    }
    std::fflush(stdout);
  }
  report("leader SIGKILL", killed);
  report("leader SIGSTOP", hung);
  return failures == 0 ? 0 : 1;
}
