// corral::Client: one I/O thread owns a ZeroMQ DEALER socket; callers hand it requests
// through a queue and an eventfd wake-up (ZeroMQ sockets must stay on one thread).
#include <corral/client.h>
#include <corral/codec.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <thread>
#include <zmq.hpp>

#include "watch_registry.h"

namespace corral {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr int32_t kPingXid = -2;
constexpr int32_t kSetWatchesXid = -8;
constexpr int32_t kAuthXid = -4;

Response errorResponse(ZkError e) {
  Response r;
  r.err = e;
  return r;
}

}  // namespace

struct Client::Impl {
  struct Command {
    Request request;
    ResponseCallback done;
    WatchCallback watch;
  };
  struct Pending {
    Request request;
    ResponseCallback done;
    WatchCallback watch;
  };

  ClientOptions options;
  zmq::context_t ctx{1};
  std::unique_ptr<zmq::socket_t> socket;  // I/O thread only
  int wake_fd = -1;
  std::thread thread;
  std::atomic<bool> running{false};

  // Shared state.
  mutable std::mutex mu;
  std::condition_variable cv;
  std::deque<Command> commands;
  KeeperState state = KeeperState::kDisconnected;
  bool ever_connected = false;
  int64_t session_id = 0;
  std::string password;
  int32_t negotiated_timeout = 0;
  SessionCallback session_cb;
  std::vector<std::pair<std::string, std::string>> credentials;  // re-sent on reconnect

  // I/O thread only.
  bool handshaking = false;
  bool connected = false;
  size_t server_index = 0;
  Clock::time_point handshake_deadline;
  Clock::time_point last_send, last_recv;
  int32_t next_xid = 1;
  int64_t last_zxid = 0;
  std::map<int32_t, Pending> pending;
  client_detail::WatchRegistry watches;

  explicit Impl(ClientOptions o) : options(std::move(o)) {
    session_id = options.session_id;
    password = options.session_password;
  }

  void wake() {
    uint64_t one = 1;
    ssize_t ignored = ::write(wake_fd, &one, sizeof(one));
    (void)ignored;
  }

  void setState(KeeperState s) {
    SessionCallback cb;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (state == s) return;
      state = s;
      cb = session_cb;
    }
    cv.notify_all();
    if (cb) cb(s);
  }

  KeeperState currentState() const {
    std::lock_guard<std::mutex> lock(mu);
    return state;
  }

  void enqueue(Command c) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (!running || state == KeeperState::kExpired || state == KeeperState::kClosed) {
        c.done(errorResponse(state == KeeperState::kExpired ? ZkError::kSessionExpired
                                                            : ZkError::kConnectionLoss));
        return;
      }
      commands.push_back(std::move(c));
    }
    wake();
  }

  // --- I/O thread ---

  void send(const std::string& frame) {
    if (!socket) return;
    try {
      socket->send(zmq::buffer(frame), zmq::send_flags::dontwait);
    } catch (const zmq::error_t&) {
    }
    last_send = Clock::now();
  }

  void openSocket() {
    if (options.servers.empty()) return;
    const std::string& endpoint = options.servers[server_index % options.servers.size()];
    ++server_index;
    try {
      socket = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::dealer);
      socket->set(zmq::sockopt::linger, 0);
      socket->connect(endpoint);
    } catch (const zmq::error_t&) {
      // connect() refused unusable endpoints up front; this one failed anyway: try the next.
      socket.reset();
      handshaking = true;
      handshake_deadline = Clock::now() + milliseconds(100);
      return;
    }
    ConnectRequest req;
    req.last_zxid_seen = last_zxid;
    req.timeout_ms = options.session_timeout_ms;
    {
      std::lock_guard<std::mutex> lock(mu);
      req.session_id = session_id;
      req.password = password;
    }
    handshaking = true;
    connected = false;
    // As ZooKeeper's client: a server gets session timeout / number of servers to answer,
    // so a dead or stuck one in the list cannot use up the whole session before the next
    // is tried.
    int servers = static_cast<int>(options.servers.size());
    auto wait = std::min<milliseconds>(
        options.connect_timeout, milliseconds(std::max(options.session_timeout_ms / servers, 300)));
    handshake_deadline = Clock::now() + wait;
    send(encodeConnect(req));
    last_recv = Clock::now();
  }

  // The connection is lost: everything in flight fails, and a new one is tried.
  void connectionLost() {
    bool was_connected = connected;
    connected = false;
    handshaking = false;
    socket.reset();
    failPending(ZkError::kConnectionLoss);
    if (was_connected) setState(KeeperState::kDisconnected);
    if (currentState() != KeeperState::kExpired && currentState() != KeeperState::kClosed)
      openSocket();
  }

  void failPending(ZkError e) {
    std::map<int32_t, Pending> failed;
    failed.swap(pending);
    for (auto& [xid, p] : failed)
      if (p.done) p.done(errorResponse(e));
  }

  void failQueued(ZkError e) {
    std::deque<Command> failed;
    {
      std::lock_guard<std::mutex> lock(mu);
      failed.swap(commands);
    }
    for (Command& c : failed) c.done(errorResponse(e));
  }

  void onConnected(const ConnectResponse& cr) {
    if (cr.err != ZkError::kOk) {
      handshaking = false;
      socket.reset();
      failPending(cr.err);
      failQueued(ZkError::kSessionExpired);
      setState(KeeperState::kExpired);
      return;
    }
    handshaking = false;
    connected = true;
    std::vector<std::pair<std::string, std::string>> creds;
    {
      std::lock_guard<std::mutex> lock(mu);
      session_id = cr.session_id;
      password = cr.password;
      negotiated_timeout = cr.timeout_ms;
      ever_connected = true;
      creds = credentials;
    }
    // A resumed session gets its credentials and watches back before anything else.
    for (const auto& [scheme, auth] : creds) {
      Request r;
      r.xid = kAuthXid;
      r.op.op = OpCode::kAuth;
      r.op.scheme = scheme;
      r.op.auth = auth;
      send(encodeRequest(r));
    }
    if (!watches.empty()) {
      Request r;
      r.xid = kSetWatchesXid;
      r.op = watches.setWatchesOp(last_zxid);
      send(encodeRequest(r));
    }
    setState(KeeperState::kSyncConnected);
  }

  void onResponse(Response& resp) {
    if (resp.zxid > last_zxid) last_zxid = resp.zxid;
    if (resp.xid == kPingXid || resp.xid == kSetWatchesXid || resp.xid == kAuthXid) return;
    auto it = pending.find(resp.xid);
    if (it == pending.end()) return;
    Pending p = std::move(it->second);
    pending.erase(it);
    watches.onResult(p.request, resp, p.watch);
    if (p.request.op.op == OpCode::kAuth && resp.err == ZkError::kOk) {
      std::lock_guard<std::mutex> lock(mu);
      credentials.emplace_back(p.request.op.scheme, p.request.op.auth);
    }
    if (p.done) p.done(resp);
  }

  void onEvent(const WatchEvent& e) {
    if (e.zxid > last_zxid) last_zxid = e.zxid;
    if (e.type == EventType::kNone) {
      if (e.state == KeeperState::kDisconnected) {
        // The server dropped this connection (e.g. it lost its leader): try the next one.
        connectionLost();
        return;
      }
      if (e.state == KeeperState::kExpired) {
        connected = false;
        socket.reset();
        failPending(ZkError::kSessionExpired);
        failQueued(ZkError::kSessionExpired);
        setState(KeeperState::kExpired);
      }
      return;
    }
    for (const WatchCallback& cb : watches.fire(e)) cb(e);
  }

  void receive() {
    while (socket) {
      zmq::message_t msg;
      zmq::recv_result_t got;
      try {
        got = socket->recv(msg, zmq::recv_flags::dontwait);
      } catch (const zmq::error_t&) {
        return;
      }
      if (!got) return;
      last_recv = Clock::now();
      Frame f;
      std::string error;
      if (!decodeFrame(std::string_view(static_cast<const char*>(msg.data()), msg.size()), &f,
                       &error))
        continue;  // a frame this client does not understand: skipped
      switch (f.kind) {
        case FrameKind::kConnectResponse:
          if (handshaking) onConnected(f.connected);
          break;
        case FrameKind::kResponse:
          onResponse(f.response);
          break;
        case FrameKind::kEvent:
          onEvent(f.event);
          break;
        default:
          break;
      }
    }
  }

  void sendCommands() {
    std::deque<Command> batch;
    {
      std::lock_guard<std::mutex> lock(mu);
      batch.swap(commands);
    }
    for (Command& c : batch) {
      if (!connected) {
        c.done(errorResponse(ZkError::kConnectionLoss));
        continue;
      }
      c.request.xid = next_xid++;
      if (next_xid <= 0) next_xid = 1;
      send(encodeRequest(c.request));
      pending.emplace(c.request.xid,
                      Pending{std::move(c.request), std::move(c.done), std::move(c.watch)});
    }
  }

  void timers() {
    auto now = Clock::now();
    if (handshaking && now >= handshake_deadline) {
      connectionLost();
      return;
    }
    if (!connected) return;
    auto timeout =
        milliseconds(negotiated_timeout > 0 ? negotiated_timeout : options.session_timeout_ms);
    if (now - last_recv > timeout * 2 / 3) {
      connectionLost();
      return;
    }
    if (now - last_send > timeout / 3) {
      Request ping;
      ping.xid = kPingXid;
      ping.op.op = OpCode::kPing;
      send(encodeRequest(ping));
    }
  }

  void run() {
    openSocket();
    while (running) {
      zmq::pollitem_t items[2] = {{nullptr, wake_fd, ZMQ_POLLIN, 0},
                                  {socket ? socket->handle() : nullptr, 0, ZMQ_POLLIN, 0}};
      int n = socket ? 2 : 1;
      try {
        zmq::poll(items, n, milliseconds(20));
      } catch (const zmq::error_t&) {
      }
      if (items[0].revents & ZMQ_POLLIN) {
        uint64_t v;
        ssize_t ignored = ::read(wake_fd, &v, sizeof(v));
        (void)ignored;
      }
      if (n == 2 && (items[1].revents & ZMQ_POLLIN)) receive();
      sendCommands();
      timers();
    }
    socket.reset();
    failPending(ZkError::kConnectionLoss);
    failQueued(ZkError::kConnectionLoss);
  }

  void startThread() {
    if (running.exchange(true)) return;
    wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    thread = std::thread([this] { run(); });
  }

  void stopThread() {
    if (!running.exchange(false)) return;
    wake();
    if (thread.joinable()) thread.join();
    if (wake_fd >= 0) ::close(wake_fd);
    wake_fd = -1;
  }
};

Client::Client(ClientOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

Client::~Client() {
  KeeperState s = impl_->currentState();
  if (impl_->running && s == KeeperState::kSyncConnected) close();
  impl_->stopThread();
}

ZkError Client::connect() {
  // An endpoint ZeroMQ cannot even parse ("tcp://host:port" expected) is a usage error.
  bool any_valid = false;
  for (const std::string& endpoint : impl_->options.servers) {
    try {
      zmq::socket_t probe(impl_->ctx, zmq::socket_type::dealer);
      probe.set(zmq::sockopt::linger, 0);
      probe.connect(endpoint);
      any_valid = true;
    } catch (const zmq::error_t&) {
    }
  }
  if (!any_valid) return ZkError::kBadArguments;
  impl_->startThread();
  std::unique_lock<std::mutex> lock(impl_->mu);
  bool done = impl_->cv.wait_for(lock, impl_->options.connect_timeout, [&] {
    return impl_->state == KeeperState::kSyncConnected || impl_->state == KeeperState::kExpired;
  });
  if (!done) return ZkError::kConnectionLoss;
  return impl_->state == KeeperState::kExpired ? ZkError::kSessionExpired : ZkError::kOk;
}

void Client::setSessionListener(SessionCallback cb) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->session_cb = std::move(cb);
}

int64_t Client::sessionId() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->session_id;
}

std::string Client::sessionPassword() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->password;
}

int32_t Client::negotiatedTimeoutMs() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->negotiated_timeout;
}

KeeperState Client::state() const {
  return impl_->currentState();
}

ZkError Client::close() {
  if (!impl_->running) return ZkError::kOk;
  Op op;
  op.op = OpCode::kCloseSession;
  Response r = call(op);
  impl_->setState(KeeperState::kClosed);
  impl_->stopThread();
  return r.err == ZkError::kConnectionLoss ? ZkError::kOk : r.err;
}

void Client::submit(const Op& op, ResponseCallback done, WatchCallback watch) {
  Impl::Command c;
  c.request.op = op;
  c.done = done ? std::move(done) : [](const Response&) {};
  c.watch = std::move(watch);
  if (c.watch) c.request.op.watch = op.op != OpCode::kAddWatch;
  impl_->enqueue(std::move(c));
}

void Client::submitMulti(const std::vector<Op>& ops, bool read_only, ResponseCallback done) {
  Impl::Command c;
  c.request.op.op = read_only ? OpCode::kMultiRead : OpCode::kMulti;
  c.request.ops = ops;
  c.done = done ? std::move(done) : [](const Response&) {};
  impl_->enqueue(std::move(c));
}

Response Client::call(const Op& op, WatchCallback watch) {
  auto promise = std::make_shared<std::promise<Response>>();
  std::future<Response> future = promise->get_future();
  submit(
      op, [promise](const Response& r) { promise->set_value(r); }, std::move(watch));
  if (future.wait_for(impl_->options.request_timeout) != std::future_status::ready)
    return errorResponse(ZkError::kOperationTimeout);
  return future.get();
}

namespace {
Op makeOp(OpCode code, const std::string& path) {
  Op op;
  op.op = code;
  op.path = path;
  return op;
}
}  // namespace

ZkError Client::create(const std::string& path, const std::string& data, CreateMode mode,
                       std::string* created_path, Stat* stat, const std::vector<Acl>& acl,
                       int64_t ttl_ms) {
  Op op = makeOp(OpCode::kCreate2, path);
  if (mode == CreateMode::kContainer) op.op = OpCode::kCreateContainer;
  if (mode == CreateMode::kPersistentWithTtl || mode == CreateMode::kPersistentSequentialWithTtl)
    op.op = OpCode::kCreateTtl;
  op.data = data;
  op.mode = mode;
  op.acl = acl;
  op.ttl_ms = ttl_ms;
  Response r = call(op);
  if (r.err == ZkError::kOk) {
    if (created_path != nullptr) *created_path = r.result.path;
    if (stat != nullptr) *stat = r.result.stat;
  }
  return r.err;
}

ZkError Client::remove(const std::string& path, int32_t version) {
  Op op = makeOp(OpCode::kDelete, path);
  op.version = version;
  return call(op).err;
}

ZkError Client::exists(const std::string& path, Stat* stat, WatchCallback watch) {
  Response r = call(makeOp(OpCode::kExists, path), std::move(watch));
  if (r.err == ZkError::kOk && stat != nullptr) *stat = r.result.stat;
  return r.err;
}

ZkError Client::getData(const std::string& path, std::string* data, Stat* stat,
                        WatchCallback watch) {
  Response r = call(makeOp(OpCode::kGetData, path), std::move(watch));
  if (r.err == ZkError::kOk) {
    if (data != nullptr) *data = r.result.data;
    if (stat != nullptr) *stat = r.result.stat;
  }
  return r.err;
}

ZkError Client::setData(const std::string& path, const std::string& data, int32_t version,
                        Stat* stat) {
  Op op = makeOp(OpCode::kSetData, path);
  op.data = data;
  op.version = version;
  Response r = call(op);
  if (r.err == ZkError::kOk && stat != nullptr) *stat = r.result.stat;
  return r.err;
}

ZkError Client::getChildren(const std::string& path, std::vector<std::string>* children, Stat* stat,
                            WatchCallback watch) {
  Response r = call(makeOp(OpCode::kGetChildren2, path), std::move(watch));
  if (r.err == ZkError::kOk) {
    if (children != nullptr) *children = r.result.children;
    if (stat != nullptr) *stat = r.result.stat;
  }
  return r.err;
}

ZkError Client::getAllChildrenNumber(const std::string& path, int32_t* count) {
  Response r = call(makeOp(OpCode::kGetAllChildrenNumber, path));
  if (r.err == ZkError::kOk && count != nullptr) *count = r.result.count;
  return r.err;
}

ZkError Client::getEphemerals(const std::string& prefix, std::vector<std::string>* paths) {
  Response r = call(makeOp(OpCode::kGetEphemerals, prefix));
  if (r.err == ZkError::kOk && paths != nullptr) *paths = r.result.children;
  return r.err;
}

ZkError Client::getAcl(const std::string& path, std::vector<Acl>* acl, Stat* stat) {
  Response r = call(makeOp(OpCode::kGetAcl, path));
  if (r.err == ZkError::kOk) {
    if (acl != nullptr) *acl = r.result.acl;
    if (stat != nullptr) *stat = r.result.stat;
  }
  return r.err;
}

ZkError Client::setAcl(const std::string& path, const std::vector<Acl>& acl, int32_t aversion,
                       Stat* stat) {
  Op op = makeOp(OpCode::kSetAcl, path);
  op.acl = acl;
  op.version = aversion;
  Response r = call(op);
  if (r.err == ZkError::kOk && stat != nullptr) *stat = r.result.stat;
  return r.err;
}

ZkError Client::sync(const std::string& path) {
  return call(makeOp(OpCode::kSync, path)).err;
}

ZkError Client::addAuth(const std::string& scheme, const std::string& credentials) {
  Op op;
  op.op = OpCode::kAuth;
  op.scheme = scheme;
  op.auth = credentials;
  return call(op).err;
}

ZkError Client::whoAmI(std::vector<Id>* ids) {
  Response r = call(makeOp(OpCode::kWhoAmI, ""));
  if (r.err == ZkError::kOk && ids != nullptr) *ids = r.result.ids;
  return r.err;
}

ZkError Client::addWatch(const std::string& path, AddWatchMode mode, WatchCallback watch) {
  Op op = makeOp(OpCode::kAddWatch, path);
  op.watch_mode = mode;
  return call(op, std::move(watch)).err;
}

ZkError Client::removeWatches(const std::string& path, WatcherType type) {
  Op op = makeOp(OpCode::kRemoveWatches, path);
  op.watcher_type = type;
  return call(op).err;
}

ZkError Client::multi(const std::vector<Op>& ops, std::vector<OpResult>* results, bool read_only) {
  auto promise = std::make_shared<std::promise<Response>>();
  std::future<Response> future = promise->get_future();
  submitMulti(ops, read_only, [promise](const Response& r) { promise->set_value(r); });
  if (future.wait_for(impl_->options.request_timeout) != std::future_status::ready)
    return ZkError::kOperationTimeout;
  Response r = future.get();
  if (results != nullptr) *results = r.results;
  return r.err;
}

const std::vector<Acl>& Client::openAclUnsafe() {
  static const std::vector<Acl> acl = {Acl{kPermAll, Id{"world", "anyone"}}};
  return acl;
}

const std::vector<Acl>& Client::readAclUnsafe() {
  static const std::vector<Acl> acl = {Acl{kPermRead, Id{"world", "anyone"}}};
  return acl;
}

}  // namespace corral
