#include "driver/driver.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "driver/peer_faults.h"

namespace corral::kernel {
namespace {

constexpr int kTransportShift = 48;
constexpr uint64_t kConnMask = (uint64_t{1} << kTransportShift) - 1;

struct Event {
  enum class Type {
    kOpen,
    kFrame,
    kClose,
    kDurable,
    kQuery,
    kPeerUp,
    kPeerDown,
    kPeerMessage
  } type;
  uint64_t conn = 0;
  std::string bytes;
  int64_t zxid = 0;
  bool ok = true;
};

}  // namespace

// How often an ensemble member's ZAB timers run (elections, pings, failure detection).
constexpr int64_t kTimerMs = 5;

struct Driver::Impl : public KernelOutput, public DurableListener, public PeerSink {
  // One per transport: tags its connection ids with the transport's index.
  struct Sink : public ClientSink {
    Impl* impl;
    uint64_t index;
    void onOpen(uint64_t conn, ByteView remote) noexcept override {
      impl->post(Event{Event::Type::kOpen, tag(conn), std::string(remote.str())});
    }
    void onFrame(uint64_t conn, ByteView frame) noexcept override {
      impl->post(Event{Event::Type::kFrame, tag(conn), std::string(frame.str())});
    }
    void onClose(uint64_t conn) noexcept override {
      impl->post(Event{Event::Type::kClose, tag(conn), {}});
    }
    uint64_t tag(uint64_t conn) const { return (index << kTransportShift) | (conn & kConnMask); }
  };

  Kernel kernel;
  StoragePlugin* storage;
  int64_t tick_ms;
  LogFn log_fn;
  std::vector<ClientTransport*> transports;
  std::vector<std::unique_ptr<Sink>> sinks;
  PeerTransport* peer = nullptr;
  std::unique_ptr<PeerFaults> faults;
  int64_t next_faults_check = 0;
  struct Delayed {
    int64_t due;
    std::string message;
  };
  std::map<int64_t, std::deque<Delayed>> delayed;  // per peer, in send order

  std::chrono::steady_clock::time_point mono_start = std::chrono::steady_clock::now();
  int64_t wall_start_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();

  std::string snapshot_dir;
  pid_t snapshot_child = -1;
  int64_t snapshot_zxid = 0;
  std::string snapshot_path;
  std::chrono::steady_clock::time_point snapshot_started;
  std::atomic<bool> saving{false};
  std::thread saver;

  std::mutex mu;
  std::condition_variable cv;
  std::vector<Event> queue;
  std::atomic<bool> queued{false};  // queue is non-empty: readable without the lock
  bool dense = false;               // events came within a few spins of each other
  bool sync_wanted = false;         // the kernel asked for a sync during this turn
  int64_t last_appended = 0;        // the last txn handed to storage ...
  int64_t last_durable = 0;         // ... and the last one storage reported durable
  static constexpr std::chrono::microseconds kSpin{50};
  bool running = false;
  std::thread thread;

  Impl(KernelOptions o, const AuthRegistry* auth, StoragePlugin* s, int64_t tick, LogFn l,
       std::string dir)
      : kernel(o, auth, this),
        storage(s),
        tick_ms(tick),
        log_fn(std::move(l)),
        snapshot_dir(std::move(dir)) {}

  int64_t now() const {
    auto elapsed = std::chrono::steady_clock::now() - mono_start;
    return wall_start_ms + std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count();
  }

  void post(Event e) noexcept {
    bool wake;
    try {
      std::lock_guard<std::mutex> lock(mu);
      queue.push_back(std::move(e));
      wake = queue.size() == 1;
      if (wake) queued.store(true, std::memory_order_release);
    } catch (...) {
      return;  // out of memory: the event is lost; sessions time out
    }
    // The kernel thread takes the whole queue each turn: only an empty queue can have it
    // waiting, so a busy transport does not pay for a wake-up per frame.
    if (wake) cv.notify_one();
  }

  // --- KernelOutput (kernel thread) ---
  void send(uint64_t conn, std::string frame) override {
    size_t index = conn >> kTransportShift;
    if (index < transports.size())
      transports[index]->send(conn & kConnMask, ByteView(frame.data(), frame.size()));
  }
  void close(uint64_t conn) override {
    size_t index = conn >> kTransportShift;
    if (index < transports.size()) transports[index]->close(conn & kConnMask);
  }
  bool append(int64_t zxid, std::string_view record, std::string* error) override {
    char err[512] = {0};
    StorageCode code =
        storage->append(static_cast<uint64_t>(zxid), ByteView(record.data(), record.size()),
                        ErrorBuf{err, sizeof(err)});
    if (code != StorageCode::kOk) *error = err;
    if (code == StorageCode::kOk) last_appended = zxid;
    return code == StorageCode::kOk;
  }
  // The kernel asks after every txn it logs; the storage's sync thread is asked once per
  // turn, after the whole batch: woken at the first txn, it would make that one durable
  // alone and leave the rest of the batch to the next fdatasync.
  void requestSync() override { sync_wanted = true; }
  void flushSync() {
    if (!sync_wanted) return;
    sync_wanted = false;
    storage->requestSync();
  }
  void truncateAfter(int64_t zxid) override {
    last_appended = std::min(last_appended, zxid);
    last_durable = std::min(last_durable, zxid);
    char err[512] = {0};
    if (storage->truncateAfter(static_cast<uint64_t>(zxid), ErrorBuf{err, sizeof(err)}) !=
        StorageCode::kOk)
      log_fn(CORRAL_LOG_ERROR, std::string("storage truncate failed: ") + err);
  }
  // Snapshots without stopping the kernel: a forked child serialises the state as it was at
  // the fork (copy-on-write) into a file; when it is done, a background thread hands the
  // bytes to storage. The kernel only pays for fork() itself.
  void snapshotDue(int64_t zxid) override {
    if (snapshot_child > 0 || saving) {
      log_fn(CORRAL_LOG_INFO, "snapshot at zxid " + std::to_string(zxid) +
                                  " skipped: the previous one is still being written");
      return;
    }
    std::string path = snapshot_dir + "/snapshot-" + std::to_string(zxid) + ".tmp";
    auto fork_started = std::chrono::steady_clock::now();
    pid_t pid = fork();
    if (pid == 0) {
      // The child: only this thread exists here; it must not touch locks other threads held.
      // It lets go of every inherited descriptor first (listening sockets above all), so a
      // server restarted while it still runs can bind its ports.
      close_range(3, ~0U, 0);
      std::string bytes = kernel.state().snapshot();
      int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
      bool ok = fd >= 0;
      for (size_t done = 0; ok && done < bytes.size();) {
        ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        ok = n > 0;
        done += ok ? static_cast<size_t>(n) : 0;
      }
      ok = ok && ::fsync(fd) == 0;
      if (fd >= 0) ::close(fd);
      _exit(ok ? 0 : 1);
    }
    if (pid < 0) {
      log_fn(CORRAL_LOG_ERROR, std::string("snapshot: fork failed: ") + std::strerror(errno));
      return;
    }
    log_fn(CORRAL_LOG_INFO,
           "snapshot at zxid " + std::to_string(zxid) + ": writer forked in " +
               std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(
                                  std::chrono::steady_clock::now() - fork_started)
                                  .count()) +
               " us");
    snapshot_child = pid;
    snapshot_zxid = zxid;
    snapshot_path = path;
    snapshot_started = std::chrono::steady_clock::now();
  }

  // Called on every turn of the kernel loop: collects a finished snapshot child.
  void pollSnapshot() {
    if (snapshot_child <= 0) return;
    int status = 0;
    pid_t r = waitpid(snapshot_child, &status, WNOHANG);
    if (r == 0) return;
    snapshot_child = -1;
    if (r < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      log_fn(CORRAL_LOG_ERROR, "snapshot at zxid " + std::to_string(snapshot_zxid) +
                                   ": the writer failed; the next one will be tried");
      ::unlink(snapshot_path.c_str());
      return;
    }
    if (saver.joinable()) saver.join();
    saving = true;
    saver =
        std::thread([this, zxid = snapshot_zxid, path = snapshot_path, started = snapshot_started] {
          std::string bytes;
          {
            std::ifstream in(path, std::ios::binary);
            bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
          }
          char err[512] = {0};
          StorageCode code = storage->saveSnapshot(static_cast<uint64_t>(zxid),
                                                   ByteView(bytes.data(), bytes.size()),
                                                   ErrorBuf{err, sizeof(err)});
          ::unlink(path.c_str());
          auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - started)
                        .count();
          if (code != StorageCode::kOk) {
            log_fn(CORRAL_LOG_ERROR, std::string("snapshot failed: ") + err);
          } else {
            log_fn(CORRAL_LOG_INFO, "snapshot at zxid " + std::to_string(zxid) + ": " +
                                        std::to_string(bytes.size()) + " bytes in " +
                                        std::to_string(ms) + " ms");
          }
          saving = false;
        });
  }

  void stopSnapshots() {
    if (snapshot_child > 0) {
      ::kill(snapshot_child, SIGKILL);
      waitpid(snapshot_child, nullptr, 0);
      ::unlink(snapshot_path.c_str());
      snapshot_child = -1;
    }
    if (saver.joinable()) saver.join();
  }

  void log(corral_log_level level, const std::string& message) override { log_fn(level, message); }

  // --- KernelOutput, ensemble (kernel thread) ---
  void sendPeer(int64_t peer_id, std::string message) override {
    if (peer == nullptr) return;
    if (faults && faults->drop(peer_id)) return;
    int64_t delay = faults ? faults->delayMs(peer_id) : 0;
    auto& queue = delayed[peer_id];
    if (delay > 0 || !queue.empty()) {
      queue.push_back(Delayed{now() + delay, std::move(message)});
      return;
    }
    peer->send(static_cast<uint64_t>(peer_id), ByteView(message.data(), message.size()));
  }
  void flushDelayed() {
    int64_t t = now();
    for (auto& [peer_id, queue] : delayed) {
      while (!queue.empty() && queue.front().due <= t) {
        const std::string& m = queue.front().message;
        peer->send(static_cast<uint64_t>(peer_id), ByteView(m.data(), m.size()));
        queue.pop_front();
      }
    }
  }
  bool saveHardState(const zab::HardState& state) override {
    char err[512] = {0};
    HardState hs;
    hs.accepted_epoch = static_cast<uint64_t>(state.accepted_epoch);
    hs.current_epoch = static_cast<uint64_t>(state.current_epoch);
    if (storage->saveHardState(hs, ErrorBuf{err, sizeof(err)}) == StorageCode::kOk) return true;
    log_fn(CORRAL_LOG_ERROR, std::string("cannot save the epochs: ") + err);
    return false;
  }
  bool truncateLog(int64_t zxid, std::string* error) override {
    char err[512] = {0};
    if (storage->truncateAfter(static_cast<uint64_t>(zxid), ErrorBuf{err, sizeof(err)}) ==
        StorageCode::kOk)
      return true;
    *error = err;
    return false;
  }
  bool installSnapshot(int64_t zxid, std::string_view data, std::string* error) override {
    // One snapshot writer at a time: the leader's snapshot supersedes a local one in progress.
    stopSnapshots();
    char err[512] = {0};
    if (storage->saveSnapshot(static_cast<uint64_t>(zxid), ByteView(data.data(), data.size()),
                              ErrorBuf{err, sizeof(err)}) != StorageCode::kOk ||
        storage->truncateAfter(0, ErrorBuf{err, sizeof(err)}) != StorageCode::kOk) {
      *error = err;
      return false;
    }
    return true;
  }

  // --- PeerSink (the peer transport's thread) ---
  void onPeerUp(uint64_t peer_id) noexcept override {
    Event e{Event::Type::kPeerUp, 0, {}};
    e.zxid = static_cast<int64_t>(peer_id);
    post(std::move(e));
  }
  void onPeerDown(uint64_t peer_id) noexcept override {
    Event e{Event::Type::kPeerDown, 0, {}};
    e.zxid = static_cast<int64_t>(peer_id);
    post(std::move(e));
  }
  void onMessage(uint64_t peer_id, ByteView message) noexcept override {
    Event e{Event::Type::kPeerMessage, 0, std::string(message.str())};
    e.zxid = static_cast<int64_t>(peer_id);
    post(std::move(e));
  }

  // --- DurableListener (storage's thread) ---
  void onDurable(uint64_t zxid, StorageCode code, ByteView message) noexcept override {
    Event e{Event::Type::kDurable, 0, std::string(message.str())};
    e.zxid = static_cast<int64_t>(zxid);
    e.ok = code == StorageCode::kOk;
    post(std::move(e));
  }

  // --- queries from plugins' threads (host api "query"), answered on the kernel thread ---
  struct Query {
    std::string answer;
    bool done = false;
  };
  std::mutex query_mu;
  std::condition_variable query_cv;
  std::unordered_map<int64_t, Query> queries;
  int64_t next_query = 0;

  std::string ask(const std::string& question) {
    int64_t id;
    {
      std::lock_guard<std::mutex> lock(query_mu);
      id = ++next_query;
      queries[id];
    }
    Event e{Event::Type::kQuery, 0, question};
    e.zxid = id;
    post(std::move(e));
    std::unique_lock<std::mutex> lock(query_mu);
    query_cv.wait_for(lock, std::chrono::seconds(2), [&] { return queries[id].done; });
    std::string answer = std::move(queries[id].answer);
    queries.erase(id);
    return answer;
  }

  void answerQuery(int64_t id, const std::string& question) {
    std::string answer = kernel.describe(question);
    {
      std::lock_guard<std::mutex> lock(query_mu);
      auto it = queries.find(id);
      if (it == queries.end()) return;  // the asker gave up
      it->second.answer = std::move(answer);
      it->second.done = true;
    }
    query_cv.notify_all();
  }

  void runTimers(int64_t* next_timer) {
    int64_t t = now();
    if (peer == nullptr || t < *next_timer) return;
    if (faults && t >= next_faults_check) {
      std::string summary;
      if (faults->reload(&summary)) log_fn(CORRAL_LOG_WARN, summary);
      next_faults_check = t + 100;
    }
    flushDelayed();
    kernel.onTimer(t);
    *next_timer = t + kTimerMs;
  }

  // A client that waits for each answer sends its next request a few tens of microseconds
  // after the last one went out: looking for it that long before sleeping saves the futex
  // sleep and wake-up on the way, a large part of a one-at-a-time read's round trip. Only
  // while events come that densely (the last sleep was that short): a server with sparse
  // traffic, or several servers sharing a few cores, never spins.
  // Nor while a txn waits for its sync: the next event is then the sync's end, hundreds of
  // microseconds away, and a write-loaded server needs the core for its other threads (set
  // 8x16 ran ~15% faster without the spin).
  void awaitBriefly() {
    if (!dense || last_appended > last_durable) return;
    auto until = std::chrono::steady_clock::now() + kSpin;
    while (!queued.load(std::memory_order_acquire)) {
      if (std::chrono::steady_clock::now() >= until) {
        dense = false;
        return;
      }
      // Not a pause loop: on a busy machine the core goes to whoever is runnable (the
      // transport's or the storage's thread), so throughput under load does not pay.
      std::this_thread::yield();
    }
  }

  void run() {
    int64_t next_tick = now() + tick_ms;
    int64_t next_timer = now();
    std::vector<Event> batch;
    while (true) {
      flushSync();  // txns logged outside a turn (at start) are not left until the next one
      awaitBriefly();
      {
        std::unique_lock<std::mutex> lock(mu);
        int64_t wake = peer != nullptr ? std::min(next_tick, next_timer) : next_tick;
        int64_t wait = wake - now();
        if (queue.empty() && running && wait > 0) {
          auto slept = std::chrono::steady_clock::now();
          cv.wait_for(lock, std::chrono::milliseconds(wait),
                      [&] { return !queue.empty() || !running; });
          dense = !queue.empty() && std::chrono::steady_clock::now() - slept < 4 * kSpin;
        }
        if (!running) return;
        batch.swap(queue);
        queued.store(false, std::memory_order_relaxed);
      }
      // Timers first: a server that was frozen (SIGSTOP) must notice that its leader or
      // quorum went silent before it answers anything that queued up meanwhile.
      runTimers(&next_timer);
      for (Event& e : batch) {
        int64_t t = now();
        switch (e.type) {
          case Event::Type::kOpen:
            kernel.onOpen(e.conn, e.bytes, t);
            break;
          case Event::Type::kFrame:
            kernel.onFrame(e.conn, e.bytes, t);
            break;
          case Event::Type::kClose:
            kernel.onClose(e.conn, t);
            break;
          case Event::Type::kDurable:
            last_durable = std::max(last_durable, e.zxid);
            kernel.onDurable(e.zxid, e.ok, e.bytes, t);
            break;
          case Event::Type::kQuery:
            answerQuery(e.zxid, e.bytes);
            break;
          case Event::Type::kPeerUp:
            kernel.onPeerUp(e.zxid, t);
            break;
          case Event::Type::kPeerDown:
            kernel.onPeerDown(e.zxid, t);
            break;
          case Event::Type::kPeerMessage:
            if (faults && faults->drop(e.zxid)) break;
            kernel.onPeerMessage(e.zxid, e.bytes, t);
            break;
        }
      }
      batch.clear();
      flushSync();
      pollSnapshot();
      int64_t t = now();
      runTimers(&next_timer);
      if (t >= next_tick) {
        kernel.onTick(t);
        next_tick = t + tick_ms;
      }
      flushSync();
    }
  }
};

Driver::Driver(KernelOptions options, const AuthRegistry* auth, StoragePlugin* storage,
               int64_t tick_ms, LogFn log, std::string snapshot_dir)
    : impl_(std::make_unique<Impl>(options, auth, storage, tick_ms, std::move(log),
                                   std::move(snapshot_dir))) {
  storage->setDurableListener(impl_.get());
}

Driver::~Driver() {
  stop();
}

namespace {
struct SnapshotLoader : SnapshotVisitor {
  Kernel* kernel;
  std::string error;
  bool ok = true;
  void onSnapshot(uint64_t, ByteView data) noexcept override {
    ok = kernel->restoreSnapshot(data.str(), &error);
  }
};
struct LogReplayer : LogVisitor {
  Kernel* kernel;
  std::string error;
  bool ok = true;
  bool onRecord(uint64_t zxid, ByteView record) noexcept override {
    ok = kernel->replay(static_cast<int64_t>(zxid), record.str(), &error);
    return ok;
  }
};
}  // namespace

bool Driver::recover(std::string* error) {
  // Snapshot files a killed server's writer left behind are incomplete by definition.
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(impl_->snapshot_dir, ec)) {
    std::string name = entry.path().filename().string();
    if (name.rfind("snapshot-", 0) == 0 && name.size() > 4 &&
        name.compare(name.size() - 4, 4, ".tmp") == 0)
      std::filesystem::remove(entry.path(), ec);
  }
  char err[512] = {0};
  SnapshotLoader snap;
  snap.kernel = &impl_->kernel;
  StorageCode code = impl_->storage->loadSnapshot(snap, ErrorBuf{err, sizeof(err)});
  if (code != StorageCode::kOk && code != StorageCode::kNotFound) {
    *error = std::string("cannot load snapshot: ") + err;
    return false;
  }
  if (!snap.ok) {
    *error = "bad snapshot: " + snap.error;
    return false;
  }
  HardState hard_state;
  if (impl_->storage->loadHardState(&hard_state, ErrorBuf{err, sizeof(err)}) != StorageCode::kOk) {
    *error = std::string("cannot load the epochs: ") + err;
    return false;
  }
  impl_->kernel.restoreHardState(zab::HardState{static_cast<int64_t>(hard_state.accepted_epoch),
                                                static_cast<int64_t>(hard_state.current_epoch)});
  // Most logged txns of a store that is being filled are creates: room for one znode per
  // txn to replay (bounded) spares the tree its rehashing. Zxids count up within an epoch.
  const uint64_t after = static_cast<uint64_t>(impl_->kernel.state().lastZxid());
  const uint64_t last = impl_->storage->lastZxid();
  if (last > after) {
    uint64_t txns = (last >> 32) == (after >> 32) ? last - after : (last & 0xffffffffu);
    impl_->kernel.reserveNodes(static_cast<size_t>(std::min<uint64_t>(txns, 2'000'000)));
  }
  LogReplayer replay;
  replay.kernel = &impl_->kernel;
  code = impl_->storage->readLog(static_cast<uint64_t>(impl_->kernel.state().lastZxid()), replay,
                                 ErrorBuf{err, sizeof(err)});
  if (code != StorageCode::kOk) {
    *error = std::string("cannot read the log: ") + err;
    return false;
  }
  if (!replay.ok) {
    *error = "bad log record: " + replay.error;
    return false;
  }
  return true;
}

size_t Driver::nodeCount() const {
  return impl_->kernel.state().nodeCount();
}

int64_t Driver::lastZxid() const {
  return impl_->kernel.state().lastZxid();
}

PeerSink* Driver::setPeerTransport(PeerTransport* transport, std::string faults_path) {
  impl_->peer = transport;
  impl_->faults = std::make_unique<PeerFaults>(std::move(faults_path));
  return impl_.get();
}

ClientSink* Driver::addTransport(ClientTransport* transport) {
  auto sink = std::make_unique<Impl::Sink>();
  sink->impl = impl_.get();
  sink->index = impl_->transports.size();
  impl_->transports.push_back(transport);
  impl_->sinks.push_back(std::move(sink));
  return impl_->sinks.back().get();
}

void Driver::start() {
  impl_->kernel.start(impl_->now());
  impl_->running = true;
  impl_->thread = std::thread([this] { impl_->run(); });
}

void Driver::stop() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (!impl_->running) return;
    impl_->running = false;
  }
  impl_->cv.notify_all();
  if (impl_->thread.joinable()) impl_->thread.join();
  impl_->stopSnapshots();
}

int64_t Driver::nowMs() const {
  return impl_->now();
}

size_t Driver::query(void* driver, const char* question, char* buf, size_t cap) {
  auto* self = static_cast<Driver*>(driver);
  if (self == nullptr || question == nullptr || !self->impl_->running) return 0;
  std::string answer = self->impl_->ask(question);
  if (buf != nullptr && cap > 0) std::memcpy(buf, answer.data(), std::min(cap, answer.size()));
  return answer.size();
}

}  // namespace corral::kernel
