// The zmq client transport plugin, loaded from its .so and driven by real DEALER sockets.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <zmq.hpp>

#include "loaded_plugin.h"
#include "recording_sink.h"

namespace corral::testing {
namespace {

using namespace std::chrono_literals;
using Kind = SinkEvent::Kind;
using Events = std::vector<SinkEvent>;

constexpr uint64_t kMaxRequest = 4096;
constexpr char kEphemeral[] = "listen = \"tcp://127.0.0.1:*\"\n";

const LoadedPlugin& plugin() {
  static LoadedPlugin p("libcorral_client_zmq.so");
  return p;
}

// A client as the native C++ client is: one DEALER, one frame per message.
class Client {
 public:
  Client(zmq::context_t& ctx, const std::string& endpoint) : sock_(ctx, zmq::socket_type::dealer) {
    sock_.set(zmq::sockopt::linger, 0);
    sock_.connect(endpoint);
  }
  void send(const std::string& frame) { sock_.send(zmq::buffer(frame), zmq::send_flags::none); }
  void sendParts(const std::string& a, const std::string& b) {
    sock_.send(zmq::buffer(a), zmq::send_flags::sndmore);
    sock_.send(zmq::buffer(b), zmq::send_flags::none);
  }
  // The next message, or nullopt when none arrives before the timeout.
  std::optional<std::string> recv(std::chrono::milliseconds timeout = 10s) {
    zmq::pollitem_t item{sock_.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, timeout) == 0) return std::nullopt;
    zmq::message_t msg;
    if (!sock_.recv(msg, zmq::recv_flags::none)) return std::nullopt;
    EXPECT_FALSE(msg.more()) << "replies are single-part";
    return msg.to_string();
  }

 private:
  zmq::socket_t sock_;
};

class ZmqTransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(plugin().ok()) << plugin().error();
    transport_ = plugin().createTransport(kEphemeral, host_.api(), &err_);
    ASSERT_NE(transport_, nullptr) << err_;
    char buf[256] = {0};
    ASSERT_EQ(transport_->start(&sink_, ErrorBuf{buf, sizeof(buf)}), TransportCode::kOk) << buf;
    endpoint_ = transport_->boundAddress();
  }

  std::unique_ptr<Client> connect() { return std::make_unique<Client>(ctx_, endpoint_); }

  // Sends `frame` from the client and returns the conn id it arrived on (0 on timeout).
  uint64_t sendAndGetConn(Client& c, const std::string& frame) {
    c.send(frame);
    uint64_t conn = 0;
    sink_.waitFor([&](const Events& ev) {
      for (auto it = ev.rbegin(); it != ev.rend(); ++it)
        if (it->kind == Kind::kFrame && it->bytes == frame) {
          conn = it->conn;
          return true;
        }
      return false;
    });
    return conn;
  }

  RecordingHost host_{kMaxRequest};
  RecordingSink sink_;  // declared before transport_: it must outlive it
  LoadedPlugin::TransportPtr transport_{nullptr, {nullptr}};
  std::string err_;
  std::string endpoint_;
  zmq::context_t ctx_;
};

TEST(ZmqTransportPlugin, DescriptorNamesAClientTransportCalledZmq) {
  ASSERT_TRUE(plugin().ok()) << plugin().error();
  const corral_plugin_descriptor* d = plugin().descriptor();
  EXPECT_EQ(d->abi_major, static_cast<uint32_t>(CORRAL_PLUGIN_ABI_MAJOR));
  EXPECT_EQ(d->kind, CORRAL_PLUGIN_CLIENT_TRANSPORT);
  EXPECT_STREQ(d->name, "zmq");
  EXPECT_STREQ(d->build_fingerprint, loaderFingerprint());
}

TEST_F(ZmqTransportTest, BoundAddressResolvesTheEphemeralPort) {
  EXPECT_EQ(endpoint_.rfind("tcp://127.0.0.1:", 0), 0u) << endpoint_;
  EXPECT_EQ(endpoint_.find('*'), std::string::npos) << endpoint_;
  EXPECT_GT(std::stoi(endpoint_.substr(endpoint_.rfind(':') + 1)), 0);
}

TEST_F(ZmqTransportTest, FirstMessageOpensAConnectionAndFramesFollowInOrder) {
  auto c = connect();
  c->send("hello");
  c->send("world");
  ASSERT_TRUE(sink_.waitFor([](const Events& ev) { return ev.size() >= 3; }));
  Events ev = sink_.events();
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_EQ(ev[0].kind, Kind::kOpen);
  EXPECT_NE(ev[0].conn, 0u);
  EXPECT_EQ(ev[0].bytes, "127.0.0.1:0");
  EXPECT_EQ(ev[1].kind, Kind::kFrame);
  EXPECT_EQ(ev[1].conn, ev[0].conn);
  EXPECT_EQ(ev[1].bytes, "hello");
  EXPECT_EQ(ev[2].kind, Kind::kFrame);
  EXPECT_EQ(ev[2].conn, ev[0].conn);
  EXPECT_EQ(ev[2].bytes, "world");
}

TEST_F(ZmqTransportTest, TwoClientsAreIsolatedAndRepliesArriveInOrder) {
  auto a = connect();
  auto b = connect();
  uint64_t ca = sendAndGetConn(*a, "from-a");
  uint64_t cb = sendAndGetConn(*b, "from-b");
  ASSERT_NE(ca, 0u);
  ASSERT_NE(cb, 0u);
  ASSERT_NE(ca, cb);
  EXPECT_EQ(RecordingSink::framesOf(sink_.events(), ca), std::vector<std::string>{"from-a"});
  EXPECT_EQ(RecordingSink::framesOf(sink_.events(), cb), std::vector<std::string>{"from-b"});

  for (int i = 0; i < 5; ++i) {
    std::string n = std::to_string(i);
    ASSERT_EQ(transport_->send(ca, ByteView(("a" + n).c_str(), 2)), TransportCode::kOk);
    ASSERT_EQ(transport_->send(cb, ByteView(("b" + n).c_str(), 2)), TransportCode::kOk);
  }
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(a->recv(), "a" + std::to_string(i));
    EXPECT_EQ(b->recv(), "b" + std::to_string(i));
  }
  EXPECT_EQ(a->recv(100ms), std::nullopt) << "a got a frame meant for b";
  EXPECT_EQ(b->recv(100ms), std::nullopt) << "b got a frame meant for a";
}

TEST_F(ZmqTransportTest, OversizeFrameClosesOnlyThatClient) {
  auto big = connect();
  auto small = connect();
  uint64_t cs = sendAndGetConn(*small, "small-1");
  ASSERT_NE(cs, 0u);

  big->send(std::string(kMaxRequest + 1, 'x'));
  ASSERT_TRUE(sink_.waitFor([&](const Events& ev) {
    uint64_t cbig = RecordingSink::openedConn(ev, 1);
    return cbig != 0 && RecordingSink::closed(ev, cbig);
  }));
  uint64_t cbig = RecordingSink::openedConn(sink_.events(), 1);
  EXPECT_TRUE(RecordingSink::framesOf(sink_.events(), cbig).empty()) << "oversize frame delivered";
  EXPECT_TRUE(host_.hasLineContaining("client " + std::to_string(cbig) +
                                      " from 127.0.0.1:0: frame of 4097 bytes exceeds "
                                      "max_request_bytes 4096; closing"));
  EXPECT_EQ(transport_->send(cbig, ByteView("x", 1)), TransportCode::kUnknownConnection);

  // The other client is untouched, both ways; a frame of exactly the limit is fine.
  EXPECT_FALSE(RecordingSink::closed(sink_.events(), cs));
  std::string at_limit(kMaxRequest, 'y');
  EXPECT_EQ(sendAndGetConn(*small, at_limit), cs);
  ASSERT_EQ(transport_->send(cs, ByteView("pong", 4)), TransportCode::kOk);
  EXPECT_EQ(small->recv(), "pong");
}

TEST_F(ZmqTransportTest, EmptyFrameClosesTheConnection) {
  auto c = connect();
  uint64_t conn = sendAndGetConn(*c, "hi");
  ASSERT_NE(conn, 0u);
  c->send("");
  ASSERT_TRUE(sink_.waitFor([&](const Events& ev) { return RecordingSink::closed(ev, conn); }));
  EXPECT_TRUE(host_.hasLineContaining("client " + std::to_string(conn)));
}

TEST_F(ZmqTransportTest, MultipartMessageIsDroppedAndTheConnectionStays) {
  auto c = connect();
  uint64_t conn = sendAndGetConn(*c, "first");
  ASSERT_NE(conn, 0u);
  c->sendParts("part-1", "part-2");
  EXPECT_EQ(sendAndGetConn(*c, "after"), conn);
  Events ev = sink_.events();
  EXPECT_EQ(RecordingSink::framesOf(ev, conn), (std::vector<std::string>{"first", "after"}));
  EXPECT_FALSE(RecordingSink::closed(ev, conn));
  EXPECT_TRUE(host_.hasLineContaining("message of 2 parts"));
}

TEST_F(ZmqTransportTest, CloseSendsQueuedFramesThenANewMessageIsANewConnection) {
  auto c = connect();
  uint64_t conn = sendAndGetConn(*c, "req");
  ASSERT_NE(conn, 0u);
  ASSERT_EQ(transport_->send(conn, ByteView("last-words", 10)), TransportCode::kOk);
  transport_->close(conn);
  EXPECT_EQ(transport_->send(conn, ByteView("too-late", 8)), TransportCode::kUnknownConnection);
  EXPECT_EQ(c->recv(), "last-words");
  ASSERT_TRUE(sink_.waitFor([&](const Events& ev) { return RecordingSink::closed(ev, conn); }));
  EXPECT_EQ(c->recv(100ms), std::nullopt);

  uint64_t again = sendAndGetConn(*c, "req-2");
  EXPECT_NE(again, 0u);
  EXPECT_NE(again, conn) << "conn ids are never reused";
  EXPECT_EQ(RecordingSink::count(sink_.events(), Kind::kOpen), 2u);
  EXPECT_EQ(RecordingSink::framesOf(sink_.events(), conn), std::vector<std::string>{"req"});
  ASSERT_EQ(transport_->send(again, ByteView("ok", 2)), TransportCode::kOk);
  EXPECT_EQ(c->recv(), "ok");
}

TEST_F(ZmqTransportTest, SendToAVanishedClientClosesItsConnection) {
  auto gone = connect();
  auto stays = connect();
  uint64_t cg = sendAndGetConn(*gone, "bye");
  uint64_t cs = sendAndGetConn(*stays, "hi");
  ASSERT_NE(cg, 0u);
  ASSERT_NE(cs, 0u);
  gone.reset();  // the DEALER closes its TCP connection
  // ZMQ_ROUTER_MANDATORY makes the write fail once libzmq has noticed; keep writing (as a
  // kernel sending pings or events would) until the transport reports the connection closed.
  bool closed = false;
  for (int i = 0; i < 200 && !closed; ++i) {
    if (transport_->send(cg, ByteView("event", 5)) == TransportCode::kUnknownConnection) break;
    closed = sink_.waitFor([&](const Events& ev) { return RecordingSink::closed(ev, cg); }, 50ms);
  }
  EXPECT_TRUE(sink_.waitFor([&](const Events& ev) { return RecordingSink::closed(ev, cg); }));
  EXPECT_EQ(transport_->send(cg, ByteView("x", 1)), TransportCode::kUnknownConnection);
  ASSERT_EQ(transport_->send(cs, ByteView("still", 5)), TransportCode::kOk);
  EXPECT_EQ(stays->recv(), "still");
}

TEST_F(ZmqTransportTest, FrameBeyondLibzmqCapDoesNotDisturbOthers) {
  auto huge = connect();
  auto other = connect();
  uint64_t co = sendAndGetConn(*other, "before");
  ASSERT_NE(co, 0u);
  huge->send(std::string(kMaxRequest * 64, 'z'));  // over ZMQ_MAXMSGSIZE: libzmq drops the peer
  EXPECT_EQ(sendAndGetConn(*other, "after"), co);
  for (const SinkEvent& e : sink_.events())
    EXPECT_FALSE(e.kind == Kind::kFrame && e.bytes.size() > kMaxRequest);
  ASSERT_EQ(transport_->send(co, ByteView("fine", 4)), TransportCode::kOk);
  EXPECT_EQ(other->recv(), "fine");
}

TEST_F(ZmqTransportTest, SendToUnknownConnectionIsRefused) {
  EXPECT_EQ(transport_->send(0, ByteView("x", 1)), TransportCode::kUnknownConnection);
  EXPECT_EQ(transport_->send(12345, ByteView("x", 1)), TransportCode::kUnknownConnection);
  transport_->close(12345);  // harmless
  EXPECT_EQ(RecordingSink::count(sink_.events(), Kind::kClose), 0u);
}

TEST_F(ZmqTransportTest, StopWithClientsConnectedClosesThemAndThenGoesQuiet) {
  auto a = connect();
  auto b = connect();
  uint64_t ca = sendAndGetConn(*a, "a");
  uint64_t cb = sendAndGetConn(*b, "b");
  ASSERT_NE(ca, 0u);
  ASSERT_NE(cb, 0u);
  transport_->stop();
  Events at_stop = sink_.events();
  EXPECT_TRUE(RecordingSink::closed(at_stop, ca));
  EXPECT_TRUE(RecordingSink::closed(at_stop, cb));
  EXPECT_EQ(transport_->send(ca, ByteView("x", 1)), TransportCode::kUnknownConnection);

  a->send("after-stop");
  EXPECT_FALSE(sink_.waitFor([&](const Events& ev) { return ev.size() > at_stop.size(); }, 300ms))
      << "sink called after stop()";
  transport_->stop();  // idempotent
}

TEST_F(ZmqTransportTest, ThousandFramesRoundTripInOrder) {
  constexpr int kFrames = 1000;
  auto c = connect();
  for (int i = 0; i < kFrames; ++i) c->send("req-" + std::to_string(i));
  ASSERT_TRUE(sink_.waitFor(
      [](const Events& ev) { return RecordingSink::count(ev, Kind::kFrame) == kFrames; }, 30s));
  uint64_t conn = RecordingSink::openedConn(sink_.events(), 0);
  std::vector<std::string> frames = RecordingSink::framesOf(sink_.events(), conn);
  ASSERT_EQ(frames.size(), static_cast<size_t>(kFrames));
  for (int i = 0; i < kFrames; ++i) {
    ASSERT_EQ(frames[i], "req-" + std::to_string(i));
    std::string reply = "rep-" + std::to_string(i);
    ASSERT_EQ(transport_->send(conn, ByteView(reply.data(), reply.size())), TransportCode::kOk);
  }
  for (int i = 0; i < kFrames; ++i) ASSERT_EQ(c->recv(), "rep-" + std::to_string(i));
}

// Each reply is sent alone from another thread (as the kernel does), so every one depends on
// the wake-up of the I/O thread; a lost wake-up would cost a whole poll timeout (1 s) per
// round trip and blow the time bound by far.
TEST_F(ZmqTransportTest, SequentialRoundTripsFromAKernelThreadAreNotDelayed) {
  constexpr int kTrips = 1000;
  std::atomic<bool> done{false};
  std::thread kernel([&] {
    size_t seen = 0;
    while (!done) {
      if (!sink_.waitFor([&](const Events& ev) { return ev.size() > seen; }, 50ms)) continue;
      Events ev = sink_.events();
      for (; seen < ev.size(); ++seen)
        if (ev[seen].kind == Kind::kFrame)
          transport_->send(ev[seen].conn, ByteView(ev[seen].bytes.data(), ev[seen].bytes.size()));
    }
  });
  auto c = connect();
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kTrips; ++i) {
    std::string msg = "trip-" + std::to_string(i);
    c->send(msg);
    auto reply = c->recv(5s);
    if (reply != msg) {
      ADD_FAILURE() << "trip " << i << ": " << reply.value_or("<none>");
      break;
    }
  }
  auto elapsed = std::chrono::steady_clock::now() - start;
  done = true;
  kernel.join();
  EXPECT_LT(elapsed, 10s);
  std::printf("%d round trips: %.1f us each\n", kTrips,
              std::chrono::duration<double, std::micro>(elapsed).count() / kTrips);
}

TEST(ZmqTransportConfig, BadConfigIsRefusedNamingTheKey) {
  ASSERT_TRUE(plugin().ok()) << plugin().error();
  RecordingHost host(kMaxRequest);
  struct Case {
    std::string toml;
    std::string expect;
  };
  const Case cases[] = {
      {"listen = \"tcp://127.0.0.1:*\"\nlisten_port = 5\n", "listen_port"},
      {"", "listen"},
      {"listen = 2281\n", "listen"},
      {"listen = \"\"\n", "listen"},
      {"listen = \"tcp://127.0.0.1:*\"\nio_threads = \"two\"\n", "io_threads"},
      {"listen = \"tcp://127.0.0.1:*\"\nio_threads = 0\n", "io_threads"},
      {"listen = \"tcp://127.0.0.1:*\"\nidle_timeout_ms = -1\n", "idle_timeout_ms"},
      {"listen = \"tcp://127.0.0.1:*\"\nidle_timeout_ms = 1.5\n", "idle_timeout_ms"},
      {"listen = \"tcp://127.0.0.1:*\"\n[nested]\nx = 1\n", "nested"},
      {"listen = \n", "line 1"},
  };
  for (const Case& c : cases) {
    std::string err;
    auto t = plugin().createTransport(c.toml, host.api(), &err);
    EXPECT_EQ(t, nullptr) << c.toml;
    EXPECT_NE(err.find(c.expect), std::string::npos) << "config: " << c.toml << "error: " << err;
  }
  std::string err;
  auto ok = plugin().createTransport(
      "listen = \"tcp://127.0.0.1:*\"\nio_threads = 2\nidle_timeout_ms = 500\n", host.api(), &err);
  EXPECT_NE(ok, nullptr) << err;
}

TEST(ZmqTransportBind, PortInUseFailsStartNamingTheAddress) {
  ASSERT_TRUE(plugin().ok()) << plugin().error();
  RecordingHost host(kMaxRequest);
  RecordingSink sink;
  std::string err;
  auto first = plugin().createTransport(kEphemeral, host.api(), &err);
  ASSERT_NE(first, nullptr) << err;
  char buf[256] = {0};
  ASSERT_EQ(first->start(&sink, ErrorBuf{buf, sizeof(buf)}), TransportCode::kOk) << buf;
  std::string taken = first->boundAddress();

  auto second = plugin().createTransport("listen = \"" + taken + "\"\n", host.api(), &err);
  ASSERT_NE(second, nullptr) << err;
  char buf2[256] = {0};
  EXPECT_EQ(second->start(&sink, ErrorBuf{buf2, sizeof(buf2)}), TransportCode::kIoError);
  std::string msg = buf2;
  EXPECT_EQ(msg.rfind("cannot listen on " + taken + ": ", 0), 0u) << msg;
  EXPECT_NE(msg.find("in use"), std::string::npos) << msg;
  second->stop();  // stop after a failed start is harmless
}

TEST(ZmqTransportThreads, SeveralIoThreadsAndAnIpcEndpointWork) {
  ASSERT_TRUE(plugin().ok()) << plugin().error();
  RecordingHost host(kMaxRequest);
  RecordingSink sink;
  std::string path = "/tmp/corral-zmq-test-" + std::to_string(::getpid()) + ".sock";
  std::string err;
  auto t = plugin().createTransport("listen = \"ipc://" + path + "\"\nio_threads = 2\n", host.api(),
                                    &err);
  ASSERT_NE(t, nullptr) << err;
  char buf[256] = {0};
  ASSERT_EQ(t->start(&sink, ErrorBuf{buf, sizeof(buf)}), TransportCode::kOk) << buf;
  EXPECT_EQ(std::string(t->boundAddress()), "ipc://" + path);
  zmq::context_t ctx;
  Client c(ctx, t->boundAddress());
  c.send("over-ipc");
  ASSERT_TRUE(sink.waitFor([](const Events& ev) { return ev.size() >= 2; }));
  Events ev = sink.events();
  EXPECT_EQ(ev[0].kind, Kind::kOpen);
  EXPECT_EQ(ev[0].bytes, "0.0.0.0:0") << "ipc has no peer IP";
  EXPECT_EQ(ev[1].bytes, "over-ipc");
  ASSERT_EQ(t->send(ev[0].conn, ByteView("back", 4)), TransportCode::kOk);
  EXPECT_EQ(c.recv(), "back");
  t->stop();
  ::unlink(path.c_str());
}

TEST(ZmqTransportIdle, SilentConnectionIsClosedAfterIdleTimeout) {
  ASSERT_TRUE(plugin().ok()) << plugin().error();
  RecordingHost host(kMaxRequest);
  RecordingSink sink;
  std::string err;
  auto t = plugin().createTransport("listen = \"tcp://127.0.0.1:*\"\nidle_timeout_ms = 200\n",
                                    host.api(), &err);
  ASSERT_NE(t, nullptr) << err;
  char buf[256] = {0};
  ASSERT_EQ(t->start(&sink, ErrorBuf{buf, sizeof(buf)}), TransportCode::kOk) << buf;
  zmq::context_t ctx;
  Client c(ctx, t->boundAddress());
  c.send("ping");
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(sink.waitFor([](const Events& ev) { return RecordingSink::closed(ev, 1); }, 10s));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 150ms);
  EXPECT_TRUE(host.hasLineContaining("silent for 200 ms"));
  t->stop();
}

}  // namespace
}  // namespace corral::testing
