// corral::Client against scripted fake servers (ROUTER sockets in the test): the handshake,
// xid matching, watch dispatch, pings, and what happens when the server goes silent — the
// client reconnects elsewhere and resumes its session, or learns that it expired.
#include <corral/client.h>
#include <corral/codec.h>
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <zmq.hpp>

namespace corral {
namespace {

using std::chrono::milliseconds;

// A fake server: receives frames, the test answers them.
class FakeServer {
 public:
  explicit FakeServer(zmq::context_t& ctx) : socket_(ctx, zmq::socket_type::router) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.bind("tcp://127.0.0.1:*");
    endpoint_ = socket_.get(zmq::sockopt::last_endpoint);
  }
  const std::string& endpoint() const { return endpoint_; }

  // The next frame from any client (and remembers who sent it), or nullopt at the deadline.
  std::optional<Frame> next(milliseconds timeout = milliseconds(5000)) {
    zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (zmq::poll(&item, 1, milliseconds(50)) <= 0) continue;
      zmq::message_t id, body;
      if (!socket_.recv(id) || !socket_.recv(body)) continue;
      peer_ = id.to_string();
      Frame f;
      std::string error;
      EXPECT_TRUE(decodeFrame(body.to_string_view(), &f, &error)) << error;
      return f;
    }
    return std::nullopt;
  }
  // The next frame that is not a ping.
  std::optional<Frame> nextNonPing(milliseconds timeout = milliseconds(5000)) {
    while (auto f = next(timeout)) {
      if (f->kind == FrameKind::kRequest && f->request.op.op == OpCode::kPing) {
        ++pings;
        continue;
      }
      return f;
    }
    return std::nullopt;
  }
  void send(const std::string& frame) {
    socket_.send(zmq::buffer(peer_), zmq::send_flags::sndmore);
    socket_.send(zmq::buffer(frame), zmq::send_flags::none);
  }
  void acceptSession(int64_t id, int32_t timeout_ms = 600) {
    auto f = nextNonPing();
    ASSERT_TRUE(f.has_value());
    ASSERT_EQ(f->kind, FrameKind::kConnect);
    last_connect = f->connect;
    ConnectResponse r;
    r.session_id = id;
    r.timeout_ms = timeout_ms;
    r.password = "0123456789abcdef";
    send(encodeConnectResponse(r));
  }
  void answer(const Frame& request, Response r) {
    r.xid = request.request.xid;
    send(encodeResponse(r));
  }

  ConnectRequest last_connect;
  int pings = 0;

 private:
  zmq::socket_t socket_;
  std::string endpoint_;
  std::string peer_;
};

class ClientTest : public ::testing::Test {
 protected:
  ClientOptions options(std::vector<std::string> servers) {
    ClientOptions o;
    o.servers = std::move(servers);
    o.session_timeout_ms = 600;
    o.connect_timeout = milliseconds(3000);
    o.request_timeout = milliseconds(3000);
    return o;
  }
  zmq::context_t ctx_;
};

TEST_F(ClientTest, HandshakeThenRequestsMatchedByXid) {
  FakeServer server(ctx_);
  Client client(options({server.endpoint()}));
  std::thread t([&] { server.acceptSession(0x0100000000000042); });
  ASSERT_EQ(client.connect(), ZkError::kOk);
  t.join();
  EXPECT_EQ(client.sessionId(), 0x0100000000000042);
  EXPECT_EQ(client.negotiatedTimeoutMs(), 600);
  EXPECT_EQ(server.last_connect.session_id, 0);
  EXPECT_EQ(server.last_connect.timeout_ms, 600);

  std::atomic<int> done{0};
  ZkError first = ZkError::kSystemError, second = ZkError::kSystemError;
  Op a;
  a.op = OpCode::kExists;
  a.path = "/a";
  Op b = a;
  b.path = "/b";
  client.submit(a, [&](const Response& r) {
    first = r.err;
    ++done;
  });
  client.submit(b, [&](const Response& r) {
    second = r.err;
    ++done;
  });
  auto fa = server.nextNonPing();
  auto fb = server.nextNonPing();
  ASSERT_TRUE(fa && fb);
  EXPECT_NE(fa->request.xid, fb->request.xid);
  Response nonode;
  nonode.err = ZkError::kNoNode;
  server.answer(*fb, nonode);  // answered out of order: matched by xid
  server.answer(*fa, Response{});
  for (int i = 0; i < 200 && done < 2; ++i) std::this_thread::sleep_for(milliseconds(10));
  EXPECT_EQ(first, ZkError::kOk);
  EXPECT_EQ(second, ZkError::kNoNode);
}

TEST_F(ClientTest, WatchCallbacksFireForTheirPathOnly) {
  FakeServer server(ctx_);
  Client client(options({server.endpoint()}));
  std::thread t([&] { server.acceptSession(7); });
  ASSERT_EQ(client.connect(), ZkError::kOk);
  t.join();

  std::mutex mu;
  std::condition_variable cv;
  std::vector<WatchEvent> got;
  auto watcher = [&](const WatchEvent& e) {
    std::lock_guard<std::mutex> lock(mu);
    got.push_back(e);
    cv.notify_all();
  };
  std::thread answerer([&] {
    auto f = server.nextNonPing();
    ASSERT_TRUE(f.has_value());
    EXPECT_TRUE(f->request.op.watch);
    Response r;
    r.result.data = "v";
    server.answer(*f, r);
  });
  std::string data;
  ASSERT_EQ(client.getData("/cfg", &data, nullptr, watcher), ZkError::kOk);
  answerer.join();
  EXPECT_EQ(data, "v");

  server.send(encodeEvent(
      WatchEvent{EventType::kNodeDataChanged, KeeperState::kSyncConnected, "/other", 5}));
  server.send(
      encodeEvent(WatchEvent{EventType::kNodeDataChanged, KeeperState::kSyncConnected, "/cfg", 6}));
  server.send(encodeEvent(WatchEvent{EventType::kNodeDataChanged, KeeperState::kSyncConnected,
                                     "/cfg", 7}));  // one-shot: not delivered again
  std::unique_lock<std::mutex> lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, milliseconds(3000), [&] { return !got.empty(); }));
  lock.unlock();
  std::this_thread::sleep_for(milliseconds(100));
  lock.lock();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].path, "/cfg");
  EXPECT_EQ(got[0].zxid, 6);
}

TEST_F(ClientTest, SilentServerMeansReconnectElsewhereAndResume) {
  FakeServer first(ctx_);
  FakeServer second(ctx_);
  std::vector<KeeperState> states;  // declared first: the client calls back until it is gone
  std::mutex mu;
  Client client(options({first.endpoint(), second.endpoint()}));
  client.setSessionListener([&](KeeperState s) {
    std::lock_guard<std::mutex> lock(mu);
    states.push_back(s);
  });
  std::thread t([&] { first.acceptSession(99); });
  ASSERT_EQ(client.connect(), ZkError::kOk);
  t.join();

  // A watch to re-arm after the move.
  std::thread answerer([&] {
    auto f = first.nextNonPing();
    ASSERT_TRUE(f.has_value());
    Response r;
    r.err = ZkError::kNoNode;
    first.answer(*f, r);
  });
  EXPECT_EQ(client.exists("/later", nullptr, [](const WatchEvent&) {}), ZkError::kNoNode);
  answerer.join();

  // The first server now says nothing: pings go unanswered, and within 2/3 of the timeout
  // the client moves to the second server with the same session id and password.
  second.acceptSession(99);
  EXPECT_GE(first.pings, 0);
  EXPECT_EQ(second.last_connect.session_id, 99);
  EXPECT_EQ(second.last_connect.password, "0123456789abcdef");
  auto rearm = second.nextNonPing();
  ASSERT_TRUE(rearm.has_value());
  EXPECT_EQ(rearm->request.op.op, OpCode::kSetWatches2);
  EXPECT_EQ(rearm->request.op.exist_watches, std::vector<std::string>{"/later"});
  for (int i = 0; i < 200 && client.state() != KeeperState::kSyncConnected; ++i)
    std::this_thread::sleep_for(milliseconds(10));
  EXPECT_EQ(client.state(), KeeperState::kSyncConnected);
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_GE(states.size(), 3u);
  EXPECT_EQ(states[0], KeeperState::kSyncConnected);
  EXPECT_EQ(states[1], KeeperState::kDisconnected);
  EXPECT_EQ(states[2], KeeperState::kSyncConnected);
}

TEST_F(ClientTest, ExpiredSessionIsReportedNeverReplacedByANewOne) {
  FakeServer server(ctx_);
  ClientOptions o = options({server.endpoint()});
  o.session_id = 1234;
  o.session_password = "0123456789abcdef";
  Client client(o);
  std::thread t([&] {
    auto f = server.next();
    ASSERT_TRUE(f.has_value());
    EXPECT_EQ(f->connect.session_id, 1234);
    ConnectResponse r;
    r.err = ZkError::kSessionExpired;
    server.send(encodeConnectResponse(r));
  });
  EXPECT_EQ(client.connect(), ZkError::kSessionExpired);
  t.join();
  EXPECT_EQ(client.state(), KeeperState::kExpired);
  EXPECT_EQ(client.exists("/x"), ZkError::kSessionExpired);
}

TEST_F(ClientTest, NoServerMeansConnectionLoss) {
  FakeServer server(ctx_);  // never answers
  ClientOptions o = options({server.endpoint()});
  o.connect_timeout = milliseconds(300);
  Client client(o);
  EXPECT_EQ(client.connect(), ZkError::kConnectionLoss);
  EXPECT_EQ(client.exists("/x"), ZkError::kConnectionLoss);
}

}  // namespace
}  // namespace corral
