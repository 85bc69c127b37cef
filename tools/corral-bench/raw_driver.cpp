// The "raw" driver: sessions on plain sockets, spread round-robin over the servers and over
// --threads RawLoops. Setup, the timed part and cleanup are all phases of those loops.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "batch_plan.h"
#include "bench_plan.h"
#include "drivers.h"
#include "raw_connection.h"
#include "raw_loop.h"
#include "zk_protocol.h"

namespace corral::bench {
namespace {

constexpr int kRequestedSessionTimeoutMs = 30000;  // as the C driver asks
constexpr auto kConnectTimeout = std::chrono::seconds(15);
constexpr auto kSetupTimeout = std::chrono::seconds(300);
constexpr auto kDrainTimeout = std::chrono::seconds(30);
constexpr auto kCloseTimeout = std::chrono::seconds(5);
constexpr int kSetupWindow = 128;

Clock::duration seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

class Run {
 public:
  explicit Run(const Options& o) : o_(o) {}

  bool connect();
  bool setup();
  bool timed(RunResult* result);
  // Deletes the bench's nodes unless the server is gone, then closes the sessions.
  void cleanup();

 private:
  // Runs `plan` on every loop, one thread per loop; `latencies` has one vector per loop.
  bool runPhase(Plan& plan, const Phase& phase, std::vector<std::vector<uint32_t>>* latencies,
                std::string* err);
  // A setup or cleanup phase; false (with a message naming `what`) if it failed.
  bool runBatch(const std::string& what, BatchPlan& plan, int window);
  void deleteNodes();
  std::vector<int64_t> onlyFirst() const;
  std::vector<int64_t> each(int64_t n) const { return std::vector<int64_t>(conns_.size(), n); }

  const Options& o_;
  std::string root_ = "/corral-bench-" + std::to_string(getpid());
  std::vector<std::string> paths_;
  std::vector<std::unique_ptr<RawConnection>> conns_;
  std::vector<std::unique_ptr<RawLoop>> loops_;
  // A connection failed or a server stopped answering: cleanup would only wait in vain.
  bool broken_ = false;
};

bool Run::connect() {
  std::vector<Endpoint> servers;
  std::string err;
  if (!parseServers(o_.servers, &servers, &err)) {
    std::fprintf(stderr, "corral-bench: %s\n", err.c_str());
    return false;
  }
  auto deadline = Clock::now() + kConnectTimeout;
  for (int i = 0; i < o_.sessions; ++i) {
    auto conn = std::make_unique<RawConnection>();
    if (!conn->startOpen(servers[static_cast<size_t>(i) % servers.size()],
                         kRequestedSessionTimeoutMs, deadline, &err)) {
      std::fprintf(stderr, "corral-bench: session %d cannot connect to %s\n", i, err.c_str());
      return false;
    }
    conns_.push_back(std::move(conn));
    paths_.push_back(root_ + "/s" + std::to_string(i));
  }
  for (size_t i = 0; i < conns_.size(); ++i) {
    if (!conns_[i]->finishOpen(deadline, &err)) {
      std::fprintf(stderr, "corral-bench: session %zu cannot connect to %s\n", i, err.c_str());
      return false;
    }
  }
  int threads = std::min(o_.threads, o_.sessions);
  for (int t = 0; t < threads; ++t) loops_.push_back(std::make_unique<RawLoop>());
  for (int i = 0; i < o_.sessions; ++i)
    loops_[static_cast<size_t>(i % threads)]->add(conns_[static_cast<size_t>(i)].get(), i);
  return true;
}

bool Run::runPhase(Plan& plan, const Phase& phase, std::vector<std::vector<uint32_t>>* latencies,
                   std::string* err) {
  std::vector<std::string> errs(loops_.size());
  std::vector<char> ok(loops_.size(), 0);
  auto runOne = [&](size_t t) {
    Phase p = phase;
    p.latencies_us = latencies ? &(*latencies)[t] : nullptr;
    ok[t] = loops_[t]->run(plan, p, &errs[t]);
  };
  std::vector<std::thread> threads;
  for (size_t t = 1; t < loops_.size(); ++t) threads.emplace_back(runOne, t);
  runOne(0);
  for (std::thread& th : threads) th.join();
  for (size_t t = 0; t < loops_.size(); ++t) {
    if (!ok[t]) {
      *err = errs[t];
      broken_ = true;
      return false;
    }
  }
  return true;
}

bool Run::runBatch(const std::string& what, BatchPlan& plan, int window) {
  Phase phase;
  phase.window = window;
  phase.stop_at = Clock::now() + kSetupTimeout;
  phase.give_up = phase.stop_at;
  std::string err;
  if (runPhase(plan, phase, nullptr, &err) && plan.succeeded(&err)) return true;
  std::fprintf(stderr, "corral-bench: %s: %s\n", what.c_str(), err.c_str());
  return false;
}

std::vector<int64_t> Run::onlyFirst() const {
  std::vector<int64_t> counts(conns_.size(), 0);
  counts[0] = 1;
  return counts;
}

bool Run::setup() {
  std::string data(static_cast<size_t>(o_.size), 'x');
  BatchPlan root(
      onlyFirst(),
      [&](int, int64_t, std::string* out) { zk::encodeCreate(out, root_, "", zk::kPersistent); },
      {zk::kNodeExists});
  BatchPlan nodes(each(1), [&](int i, int64_t, std::string* out) {
    zk::encodeCreate(out, paths_[static_cast<size_t>(i)], data, zk::kPersistent);
  });
  if (!runBatch("cannot create " + root_, root, 1) ||
      !runBatch("cannot create the session nodes", nodes, 1))
    return false;
  if (o_.op != "delete") return true;
  std::vector<std::string> prefixes;
  for (const std::string& p : paths_) prefixes.push_back(p + "/c-");
  BatchPlan children(each(deleteTargetsPerSession(o_)), [&](int i, int64_t, std::string* out) {
    zk::encodeCreate(out, prefixes[static_cast<size_t>(i)], "", zk::kPersistentSequential);
  });
  return runBatch("cannot create the nodes to delete", children, kSetupWindow);
}

bool Run::timed(RunResult* result) {
  std::atomic<int64_t> issued{0};
  BenchPlan bench(o_, paths_, &issued);
  std::vector<std::vector<uint32_t>> latencies(loops_.size());
  for (auto& l : latencies) l.reserve(1 << 20);  // so that the timed part rarely allocates
  CpuMeter meter(o_.server_pids);
  meter.start();
  Phase phase;
  phase.window = o_.inflight;
  phase.stop_at = Clock::now() + seconds(o_.seconds);
  phase.give_up = phase.stop_at + kDrainTimeout;
  std::string err;
  bool ok = runPhase(bench, phase, &latencies, &err);
  meter.stop(result);
  if (!ok) {
    std::fprintf(stderr, "corral-bench: %s\n", err.c_str());
    return false;
  }
  for (auto& l : latencies)
    result->latencies_us.insert(result->latencies_us.end(), l.begin(), l.end());
  result->errors = bench.errors();
  return true;
}

// Best effort, like the C driver's: a failure is reported but does not fail the cell.
void Run::cleanup() {
  if (!broken_) deleteNodes();
  for (auto& c : conns_) c->sendClose();
  auto deadline = Clock::now() + kCloseTimeout;
  for (auto& c : conns_) c->awaitClose(deadline);
}

void Run::deleteNodes() {
  if (o_.op == "create" || o_.op == "delete") {
    std::vector<std::vector<std::string>> children(conns_.size());
    BatchPlan list(
        each(1),
        [&](int i, int64_t, std::string* out) {
          zk::encodeRead(out, zk::kGetChildren, paths_[static_cast<size_t>(i)]);
        },
        {zk::kNoNode},
        [&](int i, JuteReader body) {
          for (int32_t n = body.int32(); n > 0 && body.ok(); --n)
            children[static_cast<size_t>(i)].emplace_back(body.buffer());
        });
    std::vector<int64_t> counts;
    if (runBatch("cleanup: listing children", list, 1)) {
      for (const auto& c : children) counts.push_back(static_cast<int64_t>(c.size()));
      BatchPlan kids(counts,
                     [&](int i, int64_t k, std::string* out) {
                       auto s = static_cast<size_t>(i);
                       zk::encodeDelete(out, paths_[s] + "/" + children[s][static_cast<size_t>(k)]);
                     },
                     {zk::kNoNode});
      runBatch("cleanup: deleting children", kids, kSetupWindow);
    }
  }
  BatchPlan nodes(each(1),
                  [&](int i, int64_t, std::string* out) {
                    zk::encodeDelete(out, paths_[static_cast<size_t>(i)]);
                  },
                  {zk::kNoNode});
  BatchPlan root(onlyFirst(), [&](int, int64_t, std::string* out) { zk::encodeDelete(out, root_); },
                 {zk::kNoNode});
  if (runBatch("cleanup: deleting the session nodes", nodes, 1))
    runBatch("cleanup: deleting " + root_, root, 1);
}

}  // namespace

bool runRawDriver(const Options& options, RunResult* result) {
  Run run(options);
  if (!run.connect()) return false;
  bool ok = run.setup() && run.timed(result);
  run.cleanup();  // also after a failed setup, which may have created some nodes
  return ok;
}

}  // namespace corral::bench
