// corral-bench: a ZooKeeper-protocol load generator built on the official C client
// (libzookeeper-mt, async API), so the same binary drives Corral (zkwire) and Apache
// ZooKeeper.
//
//   corral-bench --servers HOST:PORT [--sessions N] [--inflight K] [--op OP] [--size B]
//                [--read-ratio R] [--seconds S] [--ops N] [--json FILE] [--server-pid PID]
//   OP: create, set, get, exists, delete, mixed (get/set by --read-ratio)
//
// Each session keeps K requests in flight on its own node; every completion issues the next
// request until the time or op bound is reached. Reports ops/s and latency p50/p99/p999;
// any error fails the cell (exit 1). With --server-pid it also reports the server's CPU time
// next to the generator's, to show which side was the bottleneck.
#include <sys/resource.h>
#include <unistd.h>
#include <zookeeper/zookeeper.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string servers = "127.0.0.1:2181";
  int sessions = 1;
  int inflight = 1;
  std::string op = "set";
  int size = 100;
  double read_ratio = 0.9;
  double seconds = 10;
  int64_t max_ops = 0;
  std::string json;
  int server_pid = 0;
};

struct Session;

// One request in flight: which session, when it left, what it was.
struct Pending {
  Session* session;
  Clock::time_point started;
  bool is_read;
};

struct Session {
  const Options* options;
  zhandle_t* zh = nullptr;
  std::string path;
  std::string data;
  std::vector<uint32_t> latencies_us;  // only this session's completion thread writes
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

// Sends the next request of this session unless the run is over.
void issue(Session* s) {
  if (s->stop->load()) return;
  int64_t n = s->issued->fetch_add(1);
  if (s->options->max_ops > 0 && n >= s->options->max_ops) {
    s->stop->store(true);
    return;
  }
  const Options& o = *s->options;
  std::string op = o.op;
  if (op == "mixed") {
    thread_local std::mt19937 rng(std::random_device{}());
    op = std::uniform_real_distribution<>(0, 1)(rng) < o.read_ratio ? "get" : "set";
  }
  auto* p = new Pending{s, Clock::now(), op == "get" || op == "exists"};
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

void watcher(zhandle_t*, int type, int state, const char*, void* ctx) {
  auto* s = static_cast<Session*>(ctx);
  if (type == ZOO_SESSION_EVENT && state == ZOO_CONNECTED_STATE) {
    std::lock_guard<std::mutex> lock(s->mu);
    s->connected = true;
    s->cv.notify_all();
  }
}

double cpuSeconds(int pid) {
  if (pid == 0) {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
  }
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(f, line);
  size_t close = line.rfind(')');
  if (close == std::string::npos) return 0;
  std::vector<std::string> fields;
  size_t start = close + 2;
  while (start < line.size()) {
    size_t end = line.find(' ', start);
    fields.push_back(line.substr(start, end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  if (fields.size() < 13) return 0;
  return (std::stod(fields[11]) + std::stod(fields[12])) / sysconf(_SC_CLK_TCK);
}

int usage() {
  std::fprintf(stderr,
               "usage: corral-bench --servers HOST:PORT [--sessions N] [--inflight K] [--op "
               "create|set|get|exists|delete|mixed] [--size BYTES] [--read-ratio R] [--seconds "
               "S] [--ops N] [--json FILE] [--server-pid PID]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) return usage();
    std::string v = argv[++i];
    try {
      if (a == "--servers")
        o.servers = v;
      else if (a == "--sessions")
        o.sessions = std::stoi(v);
      else if (a == "--inflight")
        o.inflight = std::stoi(v);
      else if (a == "--op")
        o.op = v;
      else if (a == "--size")
        o.size = std::stoi(v);
      else if (a == "--read-ratio")
        o.read_ratio = std::stod(v);
      else if (a == "--seconds")
        o.seconds = std::stod(v);
      else if (a == "--ops")
        o.max_ops = std::stoll(v);
      else if (a == "--json")
        o.json = v;
      else if (a == "--server-pid")
        o.server_pid = std::stoi(v);
      else
        return usage();
    } catch (...) {
      return usage();
    }
  }
  if (o.sessions < 1 || o.inflight < 1 || o.size < 0) return usage();
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
      return 1;
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
      return 1;
    }
  }
  if (o.op == "delete") {
    int64_t per = o.max_ops > 0 ? o.max_ops / o.sessions + o.inflight : 20000;
    for (auto& s : sessions)
      for (int64_t k = 0; k < per; ++k)
        zoo_create(admin, (s->path + "/c-").c_str(), "", 0, &ZOO_OPEN_ACL_UNSAFE,
                   ZOO_PERSISTENT_SEQUENTIAL, nullptr, 0);
  }

  double cpu0 = cpuSeconds(0), server_cpu0 = o.server_pid ? cpuSeconds(o.server_pid) : 0;
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
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  double cpu = cpuSeconds(0) - cpu0;
  double server_cpu = o.server_pid ? cpuSeconds(o.server_pid) - server_cpu0 : 0;

  std::vector<uint32_t> all;
  int64_t errors = 0;
  for (auto& s : sessions) {
    all.insert(all.end(), s->latencies_us.begin(), s->latencies_us.end());
    errors += s->errors.load();
  }
  // Clean up the bench's nodes (best effort), then close the sessions.
  for (auto& s : sessions) {
    String_vector kids{};
    if (zoo_get_children(admin, s->path.c_str(), 0, &kids) == ZOK) {
      for (int k = 0; k < kids.count; ++k)
        zoo_delete(admin, (s->path + "/" + kids.data[k]).c_str(), -1);
      deallocate_String_vector(&kids);
    }
    zoo_delete(admin, s->path.c_str(), -1);
  }
  zoo_delete(admin, root.c_str(), -1);
  for (auto& s : sessions) zookeeper_close(s->zh);

  std::sort(all.begin(), all.end());
  auto pct = [&](double p) -> double {
    if (all.empty()) return 0;
    size_t i = std::min(all.size() - 1, static_cast<size_t>(p * all.size()));
    return all[i] / 1000.0;
  };
  double ops = all.size() / elapsed;
  std::printf(
      "| op | sessions x inflight | ops/s | p50 ms | p99 ms | p999 ms | errors | bench cpu s | "
      "server cpu s |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|\n");
  std::printf("| %s | %dx%d | %.0f | %.3f | %.3f | %.3f | %lld | %.2f | %.2f |\n", o.op.c_str(),
              o.sessions, o.inflight, ops, pct(0.50), pct(0.99), pct(0.999),
              static_cast<long long>(errors), cpu, server_cpu);
  if (!o.json.empty()) {
    std::ofstream j(o.json);
    j << "{\"op\":\"" << o.op << "\",\"sessions\":" << o.sessions << ",\"inflight\":" << o.inflight
      << ",\"size\":" << o.size << ",\"ops\":" << all.size() << ",\"seconds\":" << elapsed
      << ",\"ops_per_sec\":" << ops << ",\"p50_ms\":" << pct(0.5) << ",\"p99_ms\":" << pct(0.99)
      << ",\"p999_ms\":" << pct(0.999) << ",\"errors\":" << errors << ",\"bench_cpu_s\":" << cpu
      << ",\"server_cpu_s\":" << server_cpu << "}\n";
  }
  return errors == 0 ? 0 : 1;
}
