// The "c" driver: the official C client's async API, completions on its own thread.
#include <unistd.h>
#include <zookeeper/zookeeper.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "drivers.h"

namespace corral::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct Session;

// One request in flight: which session, when it left; for a multi, the ops and the results
// the C client fills in, which must live until its completion.
struct Pending {
  Session* session;
  Clock::time_point started;
  std::vector<zoo_op_t> ops;
  std::vector<zoo_op_result_t> results;
  std::vector<struct Stat> stats;
};

struct Session {
  const Options* options;
  zhandle_t* zh = nullptr;
  std::string path;
  std::string data;
  std::vector<uint32_t> latencies_us;  // only the C client's completion thread writes
  std::atomic<int64_t>* issued;
  std::atomic<bool>* stop;
  std::atomic<int64_t> errors{0};
  std::atomic<int> in_flight{0};
  std::atomic<int64_t> created{0};
  std::mutex mu;
  std::condition_variable cv;
  bool connected = false;
};

void issue(Session* s);

void complete(Pending* p, int rc) {
  Session* s = p->session;
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - p->started);
  s->latencies_us.push_back(static_cast<uint32_t>(us.count()));
  if (rc != ZOK) s->errors.fetch_add(1);
  delete p;
  s->in_flight.fetch_sub(1);
  issue(s);
}

void onStat(int rc, const struct Stat*, const void* data) {
  complete(static_cast<Pending*>(const_cast<void*>(data)), rc);
}
void onData(int rc, const char*, int, const struct Stat*, const void* data) {
  complete(static_cast<Pending*>(const_cast<void*>(data)), rc);
}
void onString(int rc, const char*, const void* data) {
  complete(static_cast<Pending*>(const_cast<void*>(data)), rc);
}
void onVoid(int rc, const void* data) {
  complete(static_cast<Pending*>(const_cast<void*>(data)), rc);
}
// A multi fails as a whole, but the C client may report it only in the op's result.
void onMulti(int rc, const void* data) {
  auto* p = static_cast<Pending*>(const_cast<void*>(data));
  for (const zoo_op_result_t& r : p->results)
    if (rc == ZOK && r.err != ZOK) rc = r.err;
  complete(p, rc);
}

// Sends the next request of this session unless the run is over.
void issue(Session* s) {
  if (s->stop->load()) return;
  const Options& o = *s->options;
  // With --ops, a session deletes only the children created for it (see BenchPlan).
  if (o.op == "delete" && o.max_ops > 0 && s->created.load() >= deleteTargetsPerSession(o)) return;
  int64_t n = s->issued->fetch_add(1);
  if (s->options->max_ops > 0 && n >= s->options->max_ops) {
    s->stop->store(true);
    return;
  }
  std::string op = o.op;
  if (op == "mixed") {
    thread_local std::mt19937 rng(std::random_device{}());
    op = std::uniform_real_distribution<>(0, 1)(rng) < o.read_ratio ? "get" : "set";
  }
  auto* p = new Pending{s, Clock::now(), {}, {}, {}};
  s->in_flight.fetch_add(1);
  int rc;
  if (op == "get") {
    rc = zoo_aget(s->zh, s->path.c_str(), 0, onData, p);
  } else if (op == "exists") {
    rc = zoo_aexists(s->zh, s->path.c_str(), 0, onStat, p);
  } else if (op == "create") {
    std::string child = s->path + "/c-";
    rc = zoo_acreate(s->zh, child.c_str(), s->data.data(), static_cast<int>(s->data.size()),
                     &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT_SEQUENTIAL, onString, p);
  } else if (op == "delete") {
    char child[64];
    std::snprintf(child, sizeof(child), "/c-%010lld",
                  static_cast<long long>(s->created.fetch_add(1)));
    rc = zoo_adelete(s->zh, (s->path + child).c_str(), -1, onVoid, p);
  } else if (op == "multi") {
    auto n = static_cast<size_t>(o.multi_ops);
    p->ops.resize(n);
    p->results.resize(n);
    p->stats.resize(n);
    for (size_t i = 0; i < n; ++i)
      zoo_set_op_init(&p->ops[i], s->path.c_str(), s->data.data(), static_cast<int>(s->data.size()),
                      -1, &p->stats[i]);
    rc = zoo_amulti(s->zh, o.multi_ops, p->ops.data(), p->results.data(), onMulti, p);
  } else {
    rc = zoo_aset(s->zh, s->path.c_str(), s->data.data(), static_cast<int>(s->data.size()), -1,
                  onStat, p);
  }
  if (rc != ZOK) {  // not even sent: count it and stop this session's chain
    s->errors.fetch_add(1);
    s->in_flight.fetch_sub(1);
    delete p;
  }
}

// Setup and cleanup requests sent all at once through the sessions' handles and pipelined,
// as the raw driver does: one synchronous request at a time took minutes for the 8x20000
// children of a delete cell on ZooKeeper.
class AsyncBatch {
 public:
  // Counts a request that the C client accepted (it will answer it).
  void sent() { ++sent_; }
  // Waits for every answer (bounded: the completions point at this object, so at the
  // deadline the process exits rather than return). False, with a message, if a request
  // failed with other than `tolerated`.
  bool await(const char* what, int tolerated = ZOK) {
    auto deadline = Clock::now() + std::chrono::seconds(300);
    while (answered_.load() < sent_ && Clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    if (answered_.load() < sent_) {
      std::fprintf(stderr, "corral-bench: %s: timed out\n", what);
      std::_Exit(1);
    }
    int rc = first_error_.load();
    if (rc == ZOK || rc == tolerated) return true;
    std::fprintf(stderr, "corral-bench: %s: %s\n", what, zerror(rc));
    return false;
  }

  static void onString(int rc, const char*, const void* data) { answer(rc, data); }
  static void onVoid(int rc, const void* data) { answer(rc, data); }

 private:
  static void answer(int rc, const void* data) {
    auto* batch = static_cast<AsyncBatch*>(const_cast<void*>(data));
    int none = ZOK;
    if (rc != ZOK) batch->first_error_.compare_exchange_strong(none, rc);
    batch->answered_.fetch_add(1);
  }

  int64_t sent_ = 0;
  std::atomic<int64_t> answered_{0};
  std::atomic<int> first_error_{ZOK};
};

bool createChildrenToDelete(const std::vector<std::unique_ptr<Session>>& sessions,
                            int64_t per_session) {
  AsyncBatch batch;
  for (const auto& s : sessions) {
    std::string prefix = s->path + "/c-";
    for (int64_t k = 0; k < per_session; ++k) {
      if (zoo_acreate(s->zh, prefix.c_str(), "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT_SEQUENTIAL,
                      AsyncBatch::onString, &batch) != ZOK)
        break;  // the handle is broken; the answers so far still come
      batch.sent();
    }
  }
  return batch.await("cannot create the nodes to delete");
}

// Deletes each session's children, then its node (best effort: a failure is reported).
void deleteSessionNodes(const std::vector<std::unique_ptr<Session>>& sessions) {
  AsyncBatch children;
  for (const auto& s : sessions) {
    String_vector kids{};
    if (zoo_get_children(s->zh, s->path.c_str(), 0, &kids) != ZOK) continue;
    for (int k = 0; k < kids.count; ++k) {
      if (zoo_adelete(s->zh, (s->path + "/" + kids.data[k]).c_str(), -1, AsyncBatch::onVoid,
                      &children) == ZOK)
        children.sent();
    }
    deallocate_String_vector(&kids);
  }
  children.await("cleanup: deleting children", ZNONODE);
  AsyncBatch nodes;
  for (const auto& s : sessions)
    if (zoo_adelete(s->zh, s->path.c_str(), -1, AsyncBatch::onVoid, &nodes) == ZOK) nodes.sent();
  nodes.await("cleanup: deleting the session nodes", ZNONODE);
}

void watcher(zhandle_t*, int type, int state, const char*, void* ctx) {
  auto* s = static_cast<Session*>(ctx);
  if (type == ZOO_SESSION_EVENT && state == ZOO_CONNECTED_STATE) {
    std::lock_guard<std::mutex> lock(s->mu);
    s->connected = true;
    s->cv.notify_all();
  }
}

}  // namespace

bool runCClientDriver(const Options& o, RunResult* result) {
  zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
  std::atomic<int64_t> issued{0};
  std::atomic<bool> stop{false};
  std::vector<std::unique_ptr<Session>> sessions;
  std::string root = "/corral-bench-" + std::to_string(getpid());
  for (int i = 0; i < o.sessions; ++i) {
    auto s = std::make_unique<Session>();
    s->options = &o;
    s->issued = &issued;
    s->stop = &stop;
    s->data.assign(static_cast<size_t>(o.size), 'x');
    s->path = root + "/s" + std::to_string(i);
    s->zh = zookeeper_init(o.servers.c_str(), watcher, 30000, nullptr, s.get(), 0);
    std::unique_lock<std::mutex> lock(s->mu);
    if (s->zh == nullptr ||
        !s->cv.wait_for(lock, std::chrono::seconds(15), [&] { return s->connected; })) {
      std::fprintf(stderr, "corral-bench: session %d cannot connect to %s\n", i, o.servers.c_str());
      return false;
    }
    lock.unlock();
    sessions.push_back(std::move(s));
  }
  // Each session's node (and, for delete, the children it will delete).
  zhandle_t* admin = sessions[0]->zh;
  zoo_create(admin, root.c_str(), "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, nullptr, 0);
  for (auto& s : sessions) {
    int rc = zoo_create(admin, s->path.c_str(), s->data.data(), o.size, &ZOO_OPEN_ACL_UNSAFE,
                        ZOO_PERSISTENT, nullptr, 0);
    if (rc != ZOK) {
      std::fprintf(stderr, "corral-bench: cannot create %s: %s\n", s->path.c_str(), zerror(rc));
      return false;
    }
  }
  if (o.op == "delete" && !createChildrenToDelete(sessions, deleteTargetsPerSession(o)))
    return false;

  CpuMeter meter(o.server_pids);
  meter.start();
  auto start = Clock::now();
  for (auto& s : sessions)
    for (int k = 0; k < o.inflight; ++k) issue(s.get());
  auto deadline =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.seconds));
  while (!stop.load() && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  stop.store(true);
  auto drain = Clock::now() + std::chrono::seconds(30);
  for (auto& s : sessions)
    while (s->in_flight.load() > 0 && Clock::now() < drain)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  meter.stop(result);

  for (auto& s : sessions) {
    result->latencies_us.insert(result->latencies_us.end(), s->latencies_us.begin(),
                                s->latencies_us.end());
    result->errors += s->errors.load();
  }
  // Clean up the bench's nodes (best effort), then close the sessions.
  deleteSessionNodes(sessions);
  zoo_delete(admin, root.c_str(), -1);
  for (auto& s : sessions) zookeeper_close(s->zh);
  return true;
}

}  // namespace corral::bench
