// A peer transport plugin (built twice: CORRAL_PEER_PLUGIN names "zmq" or "tcp"), loaded
// from its .so: several instances in this process (and one in a child process, to kill it
// for real) on loopback ports chosen at run time. Both plugins keep the same contract, so
// the same tests hold for both; only the strangers' bytes differ.
#include <arpa/inet.h>
#include <corral/peer_transport.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>
#if CORRAL_PEER_ZMQ
#include <zmq.hpp>
#endif

#include "child_process.h"
#include "free_port.h"
#include "loaded_plugin.h"
#include "temp_dir.h"

namespace corral::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

const LoadedPlugin& plugin() {
  static LoadedPlugin p("libcorral_peer_" CORRAL_PEER_PLUGIN ".so");
  return p;
}

struct TransportDeleter {
  corral_plugin_destroy_fn destroy;
  void operator()(PeerTransport* t) const {
    if (t != nullptr) destroy(t);
  }
};
using TransportPtr = std::unique_ptr<PeerTransport, TransportDeleter>;

// create() with the given TOML; on failure null, with the reason in *err.
TransportPtr createPeerTransport(const std::string& toml, const corral_host_api* host,
                                 std::string* err) {
  const corral_plugin_descriptor* d = plugin().descriptor();
  char buf[512] = {0};
  void* instance = nullptr;
  int rc = d->create(toml.data(), toml.size(), host, &instance, buf, sizeof(buf));
  if (rc != 0 || instance == nullptr) {
    if (err != nullptr) *err = buf;
    return TransportPtr(nullptr, TransportDeleter{d->destroy});
  }
  return TransportPtr(static_cast<PeerTransport*>(instance), TransportDeleter{d->destroy});
}

// n distinct loopback ports that were free a moment ago.
std::vector<int> freePorts(size_t n) {
  std::vector<int> ports;
  for (size_t i = 0; i < n; ++i) ports.push_back(freeLoopbackPort());
  return ports;
}

// The membership part of a config, as corrald writes it: self_id, listen and peers.
std::string membershipToml(uint64_t self, const std::map<uint64_t, int>& ports) {
  std::string peers;
  for (const auto& [id, port] : ports) {
    if (id == self) continue;
    peers += (peers.empty() ? "\"" : ", \"") + std::to_string(id) +
             "=127.0.0.1:" + std::to_string(port) + "\"";
  }
  return "self_id = " + std::to_string(self) +
         "\nlisten = \"127.0.0.1:" + std::to_string(ports.at(self)) + "\"\npeers = [" + peers +
         "]\n";
}

// A PeerSink that records every call and checks the contract as it goes: up and down
// alternate per peer (starting with up), messages arrive only while the link is up, and no
// call comes after the transport's stop() returned.
class PeerRecorder final : public PeerSink {
 public:
  struct State {
    std::map<uint64_t, std::vector<std::string>> messages;  // per peer, in arrival order
    std::map<uint64_t, std::vector<char>> links;            // per peer: 'U' and 'D' in order
    std::map<uint64_t, bool> up;
    std::vector<std::string> violations;

    size_t count(uint64_t peer) const {
      auto it = messages.find(peer);
      return it == messages.end() ? 0 : it->second.size();
    }
    size_t ups(uint64_t peer) const { return countLink(peer, 'U'); }
    size_t downs(uint64_t peer) const { return countLink(peer, 'D'); }
    bool isUp(uint64_t peer) const {
      auto it = up.find(peer);
      return it != up.end() && it->second;
    }
    size_t countLink(uint64_t peer, char c) const {
      auto it = links.find(peer);
      if (it == links.end()) return 0;
      size_t n = 0;
      for (char x : it->second) n += x == c;
      return n;
    }
  };

  void onPeerUp(uint64_t peer) noexcept override {
    change([&](State& s) {
      if (s.isUp(peer)) s.violations.push_back("up while up: " + std::to_string(peer));
      s.up[peer] = true;
      s.links[peer].push_back('U');
      if (on_up_) on_up_(peer);
    });
  }
  void onPeerDown(uint64_t peer) noexcept override {
    change([&](State& s) {
      if (!s.isUp(peer)) s.violations.push_back("down while down: " + std::to_string(peer));
      s.up[peer] = false;
      s.links[peer].push_back('D');
    });
  }
  void onMessage(uint64_t peer, ByteView message) noexcept override {
    change([&](State& s) {
      if (!s.isUp(peer)) s.violations.push_back("message while down: " + std::to_string(peer));
      if (keep_bytes_) {
        s.messages[peer].emplace_back(message.str());
      } else {
        s.messages[peer].emplace_back();
      }
      if (on_message_) on_message_(peer, message);
    });
  }

  // Called (under the recorder's lock, on the transport's thread) for each message.
  void setOnMessage(std::function<void(uint64_t, ByteView)> f) {
    std::lock_guard<std::mutex> lock(mu_);
    on_message_ = std::move(f);
  }
  void setOnUp(std::function<void(uint64_t)> f) {
    std::lock_guard<std::mutex> lock(mu_);
    on_up_ = std::move(f);
  }
  void keepBytes(bool keep) {
    std::lock_guard<std::mutex> lock(mu_);
    keep_bytes_ = keep;
  }
  // After the transport's stop() returned: any further call is a violation.
  void seal() {
    std::lock_guard<std::mutex> lock(mu_);
    sealed_ = true;
  }

  State state() {
    std::lock_guard<std::mutex> lock(mu_);
    return state_;
  }
  // Runs f on the state under the lock (for large states, instead of copying).
  template <typename F>
  auto inspect(F f) {
    std::lock_guard<std::mutex> lock(mu_);
    return f(state_);
  }

  // Waits until pred(state) holds; false when the deadline passes first.
  bool waitFor(const std::function<bool(const State&)>& pred,
               std::chrono::milliseconds timeout = 10s) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return pred(state_); });
  }

 private:
  template <typename F>
  void change(F f) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (sealed_) state_.violations.push_back("sink call after stop() returned");
      f(state_);
    }
    cv_.notify_all();
  }

  std::mutex mu_;
  std::condition_variable cv_;
  State state_;
  bool sealed_ = false;
  bool keep_bytes_ = true;
  std::function<void(uint64_t, ByteView)> on_message_;
  std::function<void(uint64_t)> on_up_;
};

// One server's transport, with its host and sink.
class Node {
 public:
  Node(uint64_t id, const std::map<uint64_t, int>& ports, const std::string& extra = "")
      : id_(id), host_(1 << 20) {
    std::string err;
    transport_ = createPeerTransport(membershipToml(id, ports) + extra, host_.api(), &err);
    if (transport_ == nullptr) throw std::runtime_error("create: " + err);
    char buf[256] = {0};
    PeerCode code = transport_->start(&sink_, ErrorBuf{buf, sizeof(buf)});
    if (code != PeerCode::kOk) throw std::runtime_error(std::string("start: ") + buf);
  }
  ~Node() { stop(); }

  void stop() {
    if (transport_ == nullptr) return;
    transport_->stop();
    sink_.seal();
    transport_.reset();
    for (const std::string& v : sink_.state().violations)
      ADD_FAILURE() << "server " << id_ << ": " << v;
  }

  uint64_t id() const { return id_; }
  PeerTransport& transport() { return *transport_; }
  PeerRecorder& sink() { return sink_; }
  RecordingHost& host() { return host_; }
  PeerCode send(uint64_t peer, const std::string& bytes) {
    return transport_->send(peer, ByteView(bytes.data(), bytes.size()));
  }
  bool waitUp(uint64_t peer, size_t ups = 1, std::chrono::milliseconds timeout = 10s) {
    return sink_.waitFor(
        [&](const PeerRecorder::State& s) { return s.isUp(peer) && s.ups(peer) >= ups; }, timeout);
  }
  bool waitDown(uint64_t peer, size_t downs = 1, std::chrono::milliseconds timeout = 10s) {
    return sink_.waitFor(
        [&](const PeerRecorder::State& s) { return !s.isUp(peer) && s.downs(peer) >= downs; },
        timeout);
  }
  // The transport's log and the link events, for failure messages.
  std::string diagnostics() {
    std::string out = "server " + std::to_string(id_) + " log:\n";
    for (const std::string& line : host_.lines()) out += "  " + line + "\n";
    for (const auto& [peer, links] : sink_.state().links)
      out += "  links to " + std::to_string(peer) + ": " + std::string(links.begin(), links.end()) +
             "\n";
    return out;
  }
  bool waitMessages(uint64_t peer, size_t n, std::chrono::milliseconds timeout = 10s) {
    return sink_.waitFor([&](const PeerRecorder::State& s) { return s.count(peer) >= n; }, timeout);
  }

 private:
  uint64_t id_;
  RecordingHost host_;
  PeerRecorder sink_;
  TransportPtr transport_;  // last: destroyed before the sink and host it calls
};

std::map<uint64_t, int> portsFor(std::initializer_list<uint64_t> ids) {
  std::vector<int> ports = freePorts(ids.size());
  std::map<uint64_t, int> out;
  size_t i = 0;
  for (uint64_t id : ids) out[id] = ports[i++];
  return out;
}

// The i-th message of the ordering test: sizes 0 and 1 first, a 5 MB one every 1000, and
// otherwise a few hundred bytes; bytes derived from i so that any mix-up shows.
std::string orderedMessage(size_t i) {
  size_t size = i == 0 ? 0 : i == 1 ? 1 : i % 1000 == 500 ? 5u << 20 : 8 + (i * 7919) % 600;
  std::string m(size, '\0');
  for (size_t k = 0; k < size; ++k) m[k] = static_cast<char>((i * 131 + k * 7) & 0xff);
  if (size >= 8) std::memcpy(m.data(), &i, 8);
  return m;
}

TEST(PeerTransportPlugin, DescriptorNamesAPeerTransportOfItsName) {
  ASSERT_TRUE(plugin().ok()) << plugin().error();
  const corral_plugin_descriptor* d = plugin().descriptor();
  EXPECT_EQ(d->kind, CORRAL_PLUGIN_PEER_TRANSPORT);
  EXPECT_STREQ(d->name, CORRAL_PEER_PLUGIN);
  EXPECT_EQ(d->abi_major, static_cast<uint32_t>(CORRAL_PLUGIN_ABI_MAJOR));
  EXPECT_STREQ(d->build_fingerprint, loaderFingerprint());
}

class PeerTransportTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(plugin().ok()) << plugin().error(); }
};

TEST_F(PeerTransportTest, ThreeServersComeUpAndExchangeMessagesBothWays) {
  auto ports = portsFor({1, 2, 3});
  std::vector<std::unique_ptr<Node>> nodes;
  for (uint64_t id : {1, 2, 3}) nodes.push_back(std::make_unique<Node>(id, ports));
  for (auto& n : nodes)
    for (uint64_t peer : {1, 2, 3})
      if (peer != n->id()) {
        ASSERT_TRUE(n->waitUp(peer)) << n->id() << " never saw " << peer;
      }

  for (auto& n : nodes)
    for (uint64_t peer : {1, 2, 3}) {
      if (peer == n->id()) continue;
      for (int k = 0; k < 20; ++k)
        ASSERT_EQ(n->send(peer, std::to_string(n->id()) + ">" + std::to_string(peer) + " #" +
                                    std::to_string(k)),
                  PeerCode::kOk);
    }
  for (auto& n : nodes)
    for (uint64_t from : {1, 2, 3}) {
      if (from == n->id()) continue;
      ASSERT_TRUE(n->waitMessages(from, 20)) << "at " << n->id() << " from " << from;
      std::vector<std::string> got = n->sink().state().messages[from];
      ASSERT_EQ(got.size(), 20u);
      for (int k = 0; k < 20; ++k)
        EXPECT_EQ(got[k],
                  std::to_string(from) + ">" + std::to_string(n->id()) + " #" + std::to_string(k));
    }
  // Exactly one up per link, no down.
  for (auto& n : nodes) {
    PeerRecorder::State s = n->sink().state();
    for (uint64_t peer : {1, 2, 3}) {
      if (peer == n->id()) continue;
      EXPECT_EQ(s.links[peer], std::vector<char>{'U'}) << "at " << n->id() << " for " << peer;
    }
  }
}

TEST_F(PeerTransportTest, TenThousandMessagesEachWayArriveInOrderAndWhole) {
  auto ports = portsFor({1, 2});
  // Lenient heartbeats: on a crowded machine a test process can be starved of CPU for a
  // few hundred ms, and a link that breaks (correctly reported down) loses messages.
  const std::string lenient = "heartbeat_ms = 1000\n";
  Node a(1, ports, lenient);
  Node b(2, ports, lenient);
  ASSERT_TRUE(a.waitUp(2));
  ASSERT_TRUE(b.waitUp(1));
  constexpr size_t kCount = 10'000;
  // Each transport's send() is called from one thread, as from its kernel thread.
  auto sender = [&](Node& n, uint64_t to, std::atomic<size_t>* refused) {
    for (size_t i = 0; i < kCount; ++i) {
      std::string m = orderedMessage(i);
      if (n.send(to, m) != PeerCode::kOk) ++*refused;
    }
  };
  std::atomic<size_t> refused_a{0}, refused_b{0};
  std::thread ta(sender, std::ref(a), 2, &refused_a);
  std::thread tb(sender, std::ref(b), 1, &refused_b);
  ta.join();
  tb.join();
  EXPECT_EQ(refused_a.load(), 0u);
  EXPECT_EQ(refused_b.load(), 0u);
  ASSERT_TRUE(b.waitMessages(1, kCount, 60s)) << b.sink().state().count(1) << "\n"
                                              << a.diagnostics() << b.diagnostics();
  ASSERT_TRUE(a.waitMessages(2, kCount, 60s)) << a.sink().state().count(2) << "\n"
                                              << a.diagnostics() << b.diagnostics();
  for (Node* n : {&a, &b}) {
    uint64_t from = n == &a ? 2 : 1;
    n->sink().inspect([&](const PeerRecorder::State& s) {
      const std::vector<std::string>& got = s.messages.at(from);
      ASSERT_EQ(got.size(), kCount);
      size_t bad = 0;
      for (size_t i = 0; i < kCount; ++i)
        if (got[i] != orderedMessage(i) && bad++ < 5)
          ADD_FAILURE() << "message " << i << " from " << from << " differs (size " << got[i].size()
                        << ")";
      EXPECT_EQ(bad, 0u);
      EXPECT_EQ(got[0].size(), 0u);
      EXPECT_EQ(got[1].size(), 1u);
      EXPECT_EQ(got[500].size(), 5u << 20);
    });
    EXPECT_EQ(n->sink().state().links[from], std::vector<char>{'U'});
  }
  // Nothing more arrives: each message exactly once.
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(b.sink().state().count(1), kCount);
  EXPECT_EQ(a.sink().state().count(2), kCount);
}

TEST_F(PeerTransportTest, StoppedPeerGoesDownAndComesBackUpOnTheSamePort) {
  auto ports = portsFor({1, 2, 3});
  auto n1 = std::make_unique<Node>(1, ports);
  auto n2 = std::make_unique<Node>(2, ports);
  auto n3 = std::make_unique<Node>(3, ports);
  for (Node* n : {n1.get(), n2.get()}) ASSERT_TRUE(n->waitUp(3));
  ASSERT_TRUE(n1->waitUp(2));
  ASSERT_TRUE(n2->waitUp(1));
  ASSERT_TRUE(n3->waitUp(1));
  ASSERT_TRUE(n3->waitUp(2));

  Clock::time_point stopped = Clock::now();
  n3->stop();
  for (Node* n : {n1.get(), n2.get()}) {
    ASSERT_TRUE(n->waitDown(3, 1, 5s)) << "server " << n->id() << " never saw 3 go down";
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - stopped);
    std::cout << "server " << n->id() << " saw 3 down after " << ms.count() << " ms\n";
    EXPECT_LT(ms, 1000ms);
  }
  // While 3 is down, sends are refused at once.
  EXPECT_EQ(n1->send(3, "lost"), PeerCode::kNotConnected);
  // The link between the survivors is undisturbed.
  EXPECT_EQ(n1->sink().state().links[2], std::vector<char>{'U'});
  ASSERT_EQ(n1->send(2, "still here"), PeerCode::kOk);
  ASSERT_TRUE(n2->waitMessages(1, 1));

  n3.reset();
  n3 = std::make_unique<Node>(3, ports);
  for (Node* n : {n1.get(), n2.get()}) ASSERT_TRUE(n->waitUp(3, 2)) << "at " << n->id();
  ASSERT_TRUE(n3->waitUp(1));
  ASSERT_TRUE(n3->waitUp(2));
  for (Node* n : {n1.get(), n2.get()}) {
    ASSERT_EQ(n->send(3, "hello again from " + std::to_string(n->id())), PeerCode::kOk);
    ASSERT_EQ(n3->send(n->id(), "welcome back " + std::to_string(n->id())), PeerCode::kOk);
  }
  for (Node* n : {n1.get(), n2.get()}) {
    ASSERT_TRUE(n3->waitMessages(n->id(), 1));
    EXPECT_EQ(n3->sink().state().messages[n->id()][0],
              "hello again from " + std::to_string(n->id()));
    ASSERT_TRUE(n->waitMessages(3, 1));
    EXPECT_EQ(n->sink().state().messages[3][0], "welcome back " + std::to_string(n->id()));
    EXPECT_EQ(n->sink().state().links[3], (std::vector<char>{'U', 'D', 'U'})) << "at " << n->id();
  }
}

TEST_F(PeerTransportTest, MessagesStayInOrderAcrossRepeatedRestarts) {
  auto ports = portsFor({1, 2});
  Node a(1, ports, "reconnect_ms = 20\n");
  a.sink().keepBytes(false);
  auto b = std::make_unique<Node>(2, ports, "reconnect_ms = 20\n");
  ASSERT_TRUE(a.waitUp(2));

  // 1 sends increasing numbers to 2 all along, from one thread, whatever the link state.
  std::atomic<bool> done{false};
  std::atomic<uint64_t> accepted{0};
  std::thread sender([&] {
    uint64_t seq = 0;
    while (!done) {
      std::string m(8, '\0');
      std::memcpy(m.data(), &seq, 8);
      ++seq;
      if (a.send(2, m) == PeerCode::kOk) ++accepted;
      if (seq % 64 == 0) std::this_thread::sleep_for(1ms);
    }
  });
  auto checkIncreasing = [](Node& n) {
    n.sink().inspect([&](const PeerRecorder::State& s) {
      auto it = s.messages.find(1);
      if (it == s.messages.end()) return;
      uint64_t last = 0;
      bool first = true;
      for (const std::string& m : it->second) {
        ASSERT_EQ(m.size(), 8u);
        uint64_t seq;
        std::memcpy(&seq, m.data(), 8);
        if (!first) {
          ASSERT_GT(seq, last) << "out of order or duplicated";
        }
        last = seq;
        first = false;
      }
    });
  };
  for (int round = 0; round < 3; ++round) {
    ASSERT_TRUE(b->waitMessages(1, 200)) << "round " << round;
    checkIncreasing(*b);
    b.reset();
    ASSERT_TRUE(a.waitDown(2, static_cast<size_t>(round + 1), 5s)) << "round " << round;
    b = std::make_unique<Node>(2, ports, "reconnect_ms = 20\n");
    ASSERT_TRUE(a.waitUp(2, static_cast<size_t>(round + 2))) << "round " << round;
  }
  ASSERT_TRUE(b->waitMessages(1, 200));
  done = true;
  sender.join();
  checkIncreasing(*b);
  std::vector<char> links = a.sink().state().links[2];
  EXPECT_EQ(links, (std::vector<char>{'U', 'D', 'U', 'D', 'U', 'D', 'U'}));
  EXPECT_GT(accepted.load(), 0u);
}

TEST_F(PeerTransportTest, SendToAnUnknownPeerOrToSelfIsRefused) {
  auto ports = portsFor({1, 2});
  Node a(1, ports);
  EXPECT_EQ(a.send(99, "x"), PeerCode::kUnknownPeer);
  EXPECT_EQ(a.send(1, "x"), PeerCode::kUnknownPeer);
  EXPECT_EQ(a.send(0, "x"), PeerCode::kUnknownPeer);
}

TEST_F(PeerTransportTest, SendWhileDownIsRefusedWithoutBlocking) {
  auto ports = portsFor({1, 2});
  Node a(1, ports, "max_message_bytes = 2000000\n");  // 2 is never started
  std::string big(1 << 20, 'x');
  Clock::time_point t0 = Clock::now();
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(a.send(2, big), PeerCode::kNotConnected);
  EXPECT_LT(Clock::now() - t0, 1s);
  std::string too_big(2000001, 'x');
  EXPECT_EQ(a.send(2, too_big), PeerCode::kInvalidArgument);
  EXPECT_EQ(a.sink().state().ups(2), 0u);
}

TEST_F(PeerTransportTest, OversizeMessageIsRefusedWhileUp) {
  auto ports = portsFor({1, 2});
  Node a(1, ports, "max_message_bytes = 1000\n");
  Node b(2, ports, "max_message_bytes = 1000\n");
  ASSERT_TRUE(a.waitUp(2));
  EXPECT_EQ(a.send(2, std::string(1001, 'x')), PeerCode::kInvalidArgument);
  EXPECT_EQ(a.send(2, std::string(1000, 'y')), PeerCode::kOk);
  ASSERT_TRUE(b.waitMessages(1, 1));
  EXPECT_EQ(b.sink().state().messages[1][0], std::string(1000, 'y'));
}

TEST_F(PeerTransportTest, StrangersCannotCrashTheTransportNorReachTheKernel) {
  auto ports = portsFor({1, 2});
  Node a(1, ports);
  Node b(2, ports);
  ASSERT_TRUE(a.waitUp(2));
  ASSERT_TRUE(b.waitUp(1));
#if CORRAL_PEER_ZMQ
  const std::string endpoint = "tcp://127.0.0.1:" + std::to_string(ports[1]);
  {
    zmq::context_t ctx;
    auto hello = [](uint64_t sender, uint64_t target, size_t size) {
      std::string p(size, '\0');
      for (int i = 0; i < 8 && size >= 32; ++i) {
        p[i] = static_cast<char>(sender >> (8 * i));
        p[24 + i] = static_cast<char>(target >> (8 * i));
      }
      return p;
    };
    std::vector<std::vector<std::string>> garbage = {
        {"garbage"},
        {""},
        {"two", "parts"},
        {"three", "parts", "here"},
        {"corral-peer-hello/1", "short"},
        {"corral-peer-hello/1", hello(77, 1, 40)},  // not a member
        {"corral-peer-hello/1", hello(2, 5, 40)},   // a member that meant someone else
        {"corral-peer-hello/1", hello(2, 1, 41)},   // wrong size
        {"after a bad hello"},
    };
    for (const auto& msg : garbage) {
      zmq::socket_t s(ctx, zmq::socket_type::dealer);
      s.set(zmq::sockopt::linger, 1000);
      s.connect(endpoint);
      for (size_t i = 0; i < msg.size(); ++i)
        s.send(zmq::buffer(msg[i]),
               i + 1 < msg.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
      s.send(zmq::buffer(std::string("trailing")), zmq::send_flags::none);
    }
#else
  {
    // Frames of the tcp transport that no member would send, each on its own connection.
    auto frame = [](uint8_t kind, const std::string& body) {
      std::string f(5, '\0');
      uint32_t len = static_cast<uint32_t>(body.size() + 1);
      for (int i = 0; i < 4; ++i) f[i] = static_cast<char>(len >> (8 * i));
      f[4] = static_cast<char>(kind);
      return f + body;
    };
    auto hello = [&](uint64_t sender, uint64_t target, size_t size) {
      std::string b(size, '\0');
      std::memcpy(b.data(), "corral-peer-tcp1", std::min<size_t>(16, size));
      for (int i = 0; i < 8 && size >= 56; ++i) {
        b[16 + i] = static_cast<char>(sender >> (8 * i));
        b[40 + i] = static_cast<char>(target >> (8 * i));
      }
      return frame(1, b);
    };
    std::string huge_len = "\xff\xff\xff\x7f\x00";
    std::vector<std::string> garbage = {
        frame(0, "data before any hello"),
        frame(9, "unknown kind"),
        std::string(5, '\0'),  // length 0
        huge_len + "and then some",
        frame(1, "short"),
        hello(77, 1, 56),  // not a member
        hello(2, 5, 56),   // a member that meant someone else
        hello(2, 1, 57),   // wrong size
        hello(77, 1, 56) + frame(0, "after a bad hello"),
    };
    for (const std::string& bytes : garbage) {
      int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      addr.sin_port = htons(static_cast<uint16_t>(ports[1]));
      ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
      ASSERT_EQ(write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
      close(fd);
    }
  }
  {
#endif
    // Plain TCP bytes that are no protocol at all.
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(ports[1]));
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    std::string junk(4096, '\xff');
    for (size_t i = 0; i < junk.size(); ++i) junk[i] = static_cast<char>(i * 37);
    ASSERT_GT(write(fd, junk.data(), junk.size()), 0);
    close(fd);
  }  // (zmq: the context's destructor waits until everything was sent: linger)

  // The real member is still heard, and only it.
  ASSERT_EQ(b.send(1, "from the real 2"), PeerCode::kOk);
  ASSERT_TRUE(a.waitMessages(2, 1));
  ASSERT_EQ(a.send(2, "to the real 2"), PeerCode::kOk);
  ASSERT_TRUE(b.waitMessages(1, 1));
  std::this_thread::sleep_for(50ms);
  PeerRecorder::State s = a.sink().state();
  EXPECT_EQ(s.messages.size(), 1u);
  EXPECT_EQ(s.messages[2], std::vector<std::string>{"from the real 2"});
  EXPECT_EQ(s.links[2], std::vector<char>{'U'});
  EXPECT_EQ(s.links.size(), 1u);
  // One warning (they are rate-limited; which stranger is first depends on scheduling).
  EXPECT_TRUE(a.host().hasLineContaining("on 127.0.0.1:" + std::to_string(ports[1]) + ": "))
      << "no warning logged";
}

TEST_F(PeerTransportTest, StopReportsEveryLinkDownAndThenGoesQuiet) {
  auto ports = portsFor({1, 2, 3});
  auto a = std::make_unique<Node>(1, ports);
  Node b(2, ports);
  Node c(3, ports);
  ASSERT_TRUE(a->waitUp(2));
  ASSERT_TRUE(a->waitUp(3));
  ASSERT_TRUE(b.waitUp(1));
  // b keeps sending to a while a stops: nothing may reach a's sink after stop() returns
  // (Node::stop seals the sink and reports late calls as failures).
  std::atomic<bool> done{false};
  std::thread sender([&] {
    while (!done) {
      b.send(1, "late");
      std::this_thread::sleep_for(100us);
    }
  });
  std::this_thread::sleep_for(20ms);
  a->transport().stop();
  a->sink().seal();
  PeerRecorder::State s = a->sink().state();
  EXPECT_EQ(s.links[2], (std::vector<char>{'U', 'D'}));
  EXPECT_EQ(s.links[3], (std::vector<char>{'U', 'D'}));
  EXPECT_EQ(a->send(2, "after stop"), PeerCode::kNotConnected);
  ASSERT_TRUE(b.waitDown(1));
  done = true;
  sender.join();
  a.reset();
}

TEST(PeerTransportConfig, BadConfigIsRefusedNamingTheKey) {
  ASSERT_TRUE(plugin().ok()) << plugin().error();
  RecordingHost host(1 << 20);
  const std::string good_listen = "listen = \"127.0.0.1:7001\"\n";
  struct Case {
    std::string toml;
    std::string expect;
  } cases[] = {
      {good_listen + "peers = [\"2=127.0.0.1:7002\"]\n", "'self_id'"},
      {"self_id = 1\n" + good_listen + "peers = [\"x=1.2.3\"]\n", "'peers' entry 1 \"x=1.2.3\""},
      {"self_id = 1\n" + good_listen + "peers = [\"2=127.0.0.1\"]\n", "'peers' entry 1"},
      {"self_id = 1\n" + good_listen + "peers = [\"2=127.0.0.1:70000\"]\n", "'peers' entry 1"},
      {"self_id = 1\n" + good_listen + "peers = [\"2=127.0.0.1:7002\", \"2=127.0.0.1:7003\"]\n",
       "'peers' entry 2"},
      {"self_id = 1\n" + good_listen + "peers = [\"1=127.0.0.1:7002\"]\n", "is self_id"},
      {"self_id = 1\n" + good_listen + "peers = [2]\n", "'peers' entry 1"},
      {"self_id = 1\n" + good_listen + "peers = \"2=127.0.0.1:7002\"\n", "'peers'"},
      {"self_id = 1\n" + good_listen, "'peers'"},
      {"self_id = 1\npeers = []\n", "'listen'"},
      {"self_id = 1\nlisten = \"7001\"\npeers = []\n", "'listen'"},
      {"self_id = 0\n" + good_listen + "peers = []\n", "'self_id'"},
      {"self_id = \"1\"\n" + good_listen + "peers = []\n", "'self_id'"},
      {"self_id = 1\n" + good_listen + "peers = []\nreconnect_ms = 0\n", "'reconnect_ms'"},
      {"self_id = 1\n" + good_listen + "peers = []\nheartbeat_ms = -1\n", "'heartbeat_ms'"},
      {"self_id = 1\n" + good_listen + "peers = []\nmax_message_bytes = \"big\"\n",
       "'max_message_bytes'"},
      {"self_id = 1\n" + good_listen + "peers = []\nbogus = 1\n", "'bogus'"},
      {"self_id = 1\n" + good_listen + "peers = [\n", "config line"},
  };
  for (const Case& c : cases) {
    std::string err;
    TransportPtr t = createPeerTransport(c.toml, host.api(), &err);
    EXPECT_EQ(t, nullptr) << c.toml;
    EXPECT_NE(err.find(c.expect), std::string::npos)
        << "config:\n"
        << c.toml << "error: " << err << "\nexpected to contain: " << c.expect;
    EXPECT_EQ(err.find('\n'), std::string::npos) << "one line: " << err;
  }
  // And good ones, including IPv6 and an empty membership.
  for (const std::string& toml : std::vector<std::string>{
           "self_id = 1\n" + good_listen + "peers = []\n",
           "self_id = 1\nlisten = \"[::1]:7001\"\npeers = [\"2=[::1]:7002\", "
           "\"3=localhost:7003\"]\n"
           "reconnect_ms = 50\nheartbeat_ms = 0\nmax_message_bytes = 1024\n"}) {
    std::string err;
    EXPECT_NE(createPeerTransport(toml, host.api(), &err), nullptr) << toml << err;
  }
}

TEST(PeerTransportBind, PortInUseFailsStartNamingTheAddress) {
  ASSERT_TRUE(plugin().ok()) << plugin().error();
  auto ports = portsFor({1, 2});
  Node a(1, ports);
  RecordingHost host(1 << 20);
  std::string err;
  TransportPtr t = createPeerTransport(membershipToml(1, ports), host.api(), &err);
  ASSERT_NE(t, nullptr) << err;
  PeerRecorder sink;
  char buf[256] = {0};
  EXPECT_EQ(t->start(&sink, ErrorBuf{buf, sizeof(buf)}), PeerCode::kIoError);
  EXPECT_NE(std::string(buf).find("127.0.0.1:" + std::to_string(ports[1])), std::string::npos)
      << buf;
}

// A TCP relay between one server's DEALER and another's ROUTER, so that a test can break
// one direction of a link (cut) or make it silent without closing it (pause).
class Relay {
 public:
  Relay(int listen_port, int target_port) : target_port_(target_port) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in a = loopback(listen_port);
    if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
        listen(listen_fd_, 16) != 0)
      throw std::runtime_error("relay cannot listen");
    thread_ = std::thread([this] { run(); });
  }
  ~Relay() {
    stop_ = true;
    thread_.join();
    for (auto& [a, b] : pairs_) {
      close(a);
      close(b);
    }
    close(listen_fd_);
  }
  // Closes every relayed connection now; new ones are relayed as before.
  void cut() {
    cut_ = true;
    while (cut_) std::this_thread::sleep_for(1ms);
  }
  // Paused: nothing is relayed (connections stay open, bytes wait in the kernel).
  void pause(bool paused) { paused_ = paused; }
  // Relays at most this many bytes per second (0: as fast as it can).
  void limitRate(uint64_t bytes_per_second) { rate_ = bytes_per_second; }
  size_t connections() {
    std::lock_guard<std::mutex> lock(mu_);
    return pairs_.size();
  }

 private:
  static sockaddr_in loopback(int port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    return a;
  }
  void closePair(size_t i) {
    std::lock_guard<std::mutex> lock(mu_);
    close(pairs_[i].first);
    close(pairs_[i].second);
    pairs_.erase(pairs_.begin() + static_cast<std::ptrdiff_t>(i));
  }
  void run() {
    std::vector<char> buf(1 << 16);
    while (!stop_) {
      if (cut_) {
        while (connections() > 0) closePair(0);
        cut_ = false;
      }
      std::vector<pollfd> fds{{listen_fd_, POLLIN, 0}};
      if (!paused_)
        for (auto& [a, b] : pairs_) {
          fds.push_back({a, POLLIN, 0});
          fds.push_back({b, POLLIN, 0});
        }
      if (poll(fds.data(), fds.size(), 5) <= 0) continue;
      if (fds[0].revents & POLLIN) {
        int in = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        int out = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in t = loopback(target_port_);
        if (in >= 0 && connect(out, reinterpret_cast<sockaddr*>(&t), sizeof(t)) == 0) {
          std::lock_guard<std::mutex> lock(mu_);
          pairs_.emplace_back(in, out);
        } else {
          if (in >= 0) close(in);
          close(out);
        }
      }
      for (size_t k = 1; k < fds.size(); ++k) {
        if ((fds[k].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
        size_t pair = (k - 1) / 2;
        int from = fds[k].fd;
        int to = from == pairs_[pair].first ? pairs_[pair].second : pairs_[pair].first;
        ssize_t n = read(from, buf.data(), buf.size());
        bool ok = n > 0;
        for (ssize_t done = 0; ok && done < n;) {
          ssize_t w = write(to, buf.data() + done, static_cast<size_t>(n - done));
          ok = w > 0;
          done += w;
        }
        if (!ok) {
          closePair(pair);
          break;  // indices moved: poll again
        }
        if (uint64_t rate = rate_; rate > 0)
          std::this_thread::sleep_for(
              std::chrono::microseconds(static_cast<uint64_t>(n) * 1'000'000 / rate));
      }
    }
  }

  int target_port_;
  int listen_fd_ = -1;
  std::thread thread_;
  std::atomic<bool> stop_{false}, cut_{false}, paused_{false};
  std::atomic<uint64_t> rate_{0};
  std::mutex mu_;
  std::vector<std::pair<int, int>> pairs_;
};

TEST_F(PeerTransportTest, BreakingOneDirectionTakesTheLinkDownAtBothEnds) {
  std::vector<int> p = freePorts(3);  // 1, 2, relay in front of 2
  std::map<uint64_t, int> ports{{1, p[0]}, {2, p[1]}};
  Relay relay(p[2], p[1]);
  Node a(1, {{1, p[0]}, {2, p[2]}}, "reconnect_ms = 20\n");
  Node b(2, ports, "reconnect_ms = 20\n");
  ASSERT_TRUE(a.waitUp(2));
  ASSERT_TRUE(b.waitUp(1));
  ASSERT_EQ(a.send(2, "before"), PeerCode::kOk);
  ASSERT_EQ(b.send(1, "before"), PeerCode::kOk);
  ASSERT_TRUE(b.waitMessages(1, 1));
  ASSERT_TRUE(a.waitMessages(2, 1));

  // Only 1's connection to 2 breaks; 2's connection to 1 stays. Both must see the link
  // go down and come back, since messages from 1 may have been lost.
  relay.cut();
  ASSERT_TRUE(a.waitUp(2, 2));
  ASSERT_TRUE(b.waitUp(1, 2));
  EXPECT_EQ(a.sink().state().links[2], (std::vector<char>{'U', 'D', 'U'}));
  EXPECT_EQ(b.sink().state().links[1], (std::vector<char>{'U', 'D', 'U'}));
  ASSERT_EQ(a.send(2, "after"), PeerCode::kOk);
  ASSERT_EQ(b.send(1, "after"), PeerCode::kOk);
  ASSERT_TRUE(b.waitMessages(1, 2));
  ASSERT_TRUE(a.waitMessages(2, 2));
  EXPECT_EQ(b.sink().state().messages[1], (std::vector<std::string>{"before", "after"}));
  EXPECT_EQ(a.sink().state().messages[2], (std::vector<std::string>{"before", "after"}));
}

TEST_F(PeerTransportTest, HeartbeatsDetectASilentLinkAndItRecovers) {
  std::vector<int> p = freePorts(3);
  Relay relay(p[2], p[1]);
  const std::string fast = "reconnect_ms = 20\nheartbeat_ms = 50\n";
  Node a(1, {{1, p[0]}, {2, p[2]}}, fast);
  Node b(2, {{1, p[0]}, {2, p[1]}}, fast);
  ASSERT_TRUE(a.waitUp(2));
  ASSERT_TRUE(b.waitUp(1));

  relay.pause(true);  // 1 -> 2 goes silent without closing
  Clock::time_point paused = Clock::now();
  ASSERT_TRUE(a.waitDown(2, 1, 5s));
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - paused);
  std::cout << "silent link reported down after " << ms.count() << " ms (heartbeat 50 ms)\n";
  EXPECT_EQ(a.send(2, "lost"), PeerCode::kNotConnected);

  relay.cut();  // the silent connections end; new ones are relayed again
  relay.pause(false);
  ASSERT_TRUE(a.waitUp(2, 2));
  ASSERT_TRUE(b.waitUp(1, 2));
  ASSERT_EQ(a.send(2, "healed"), PeerCode::kOk);
  ASSERT_TRUE(b.waitMessages(1, 1));
  EXPECT_EQ(b.sink().state().messages[1], std::vector<std::string>{"healed"});
}

// Heartbeats must break a link only when the peer is silent, not when it is busy: here the
// receiver's kernel stalls for 10 heartbeat timeouts while the sender keeps sending, and a
// 5 MB message crawls through a slow relay for several timeouts.
TEST_F(PeerTransportTest, SlowReaderAndSlowLargeMessageDoNotBreakTheLink) {
  std::vector<int> p = freePorts(3);
  Relay relay(p[2], p[1]);
  const std::string fast = "heartbeat_ms = 100\n";  // a link silent for 300 ms is broken
  Node a(1, {{1, p[0]}, {2, p[2]}}, fast);
  Node b(2, {{1, p[0]}, {2, p[1]}}, fast);
  ASSERT_TRUE(a.waitUp(2));
  ASSERT_TRUE(b.waitUp(1));

  std::atomic<bool> stalled{false};
  b.sink().setOnMessage([&](uint64_t, ByteView) {
    if (!stalled.exchange(true)) std::this_thread::sleep_for(1500ms);
  });
  constexpr size_t kCount = 30'000;  // more than libzmq holds on both sides
  for (size_t i = 0; i < kCount; ++i) ASSERT_EQ(a.send(2, std::to_string(i)), PeerCode::kOk);
  ASSERT_TRUE(b.waitMessages(1, kCount, 30s)) << a.diagnostics() << b.diagnostics();
  b.sink().setOnMessage(nullptr);

  relay.limitRate(5u << 20);  // 5 MB/s: the big message takes about a second
  std::string big(5u << 20, 'b');
  ASSERT_EQ(a.send(2, big), PeerCode::kOk) << a.diagnostics() << b.diagnostics();
  ASSERT_EQ(a.send(2, "after the big one"), PeerCode::kOk);
  ASSERT_TRUE(b.waitMessages(1, kCount + 2, 30s)) << a.diagnostics() << b.diagnostics();
  PeerRecorder::State s = b.sink().state();
  EXPECT_EQ(s.messages[1][kCount], big);
  EXPECT_EQ(s.messages[1][kCount + 1], "after the big one");
  EXPECT_EQ(s.links[1], std::vector<char>{'U'}) << b.diagnostics();
  EXPECT_EQ(a.sink().state().links[2], std::vector<char>{'U'}) << a.diagnostics();
}

// A server in a child process, so that the test can SIGKILL it. The child runs this binary
// with --gtest_filter=PeerTransportChild.DISABLED_Serve, reads its config from stdin up to
// a line "END", echoes every message back to its sender and exits when stdin closes.
TEST(PeerTransportChild, DISABLED_Serve) {
  std::string toml, line;
  while (std::getline(std::cin, line) && line != "END") toml += line + "\n";
  RecordingHost host(1 << 20);
  std::string err;
  TransportPtr t = createPeerTransport(toml, host.api(), &err);
  ASSERT_NE(t, nullptr) << err;
  PeerRecorder sink;
  sink.keepBytes(false);
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::pair<uint64_t, std::string>> inbox;
  sink.setOnMessage([&](uint64_t peer, ByteView m) {
    std::lock_guard<std::mutex> lock(mu);
    inbox.emplace_back(peer, "echo:" + std::string(m.str()));
    cv.notify_one();
  });
  char buf[256] = {0};
  ASSERT_EQ(t->start(&sink, ErrorBuf{buf, sizeof(buf)}), PeerCode::kOk) << buf;
  std::atomic<bool> done{false};
  std::thread kernel([&] {  // the one thread that calls send(), as the kernel thread does
    std::unique_lock<std::mutex> lock(mu);
    while (!done) {
      cv.wait_for(lock, 100ms, [&] { return !inbox.empty(); });
      while (!inbox.empty()) {
        auto [peer, m] = std::move(inbox.front());
        inbox.pop_front();
        lock.unlock();
        t->send(peer, ByteView(m.data(), m.size()));
        lock.lock();
      }
    }
  });
  std::cout << "READY" << std::endl;
  while (std::getline(std::cin, line)) {
  }
  done = true;
  kernel.join();
  t->stop();
}

class ChildServer {
 public:
  ChildServer(const TempDir& dir, const std::string& toml) {
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0) throw std::runtime_error("readlink /proc/self/exe");
    self[n] = '\0';
    proc_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{self, "--gtest_filter=PeerTransportChild.DISABLED_Serve",
                                 "--gtest_also_run_disabled_tests"},
        dir.path() + "/child-" + std::to_string(++count_) + ".log");
    proc_->writeStdin(toml + "END\n");
  }
  bool ready() { return proc_->waitForOutput("READY", 10s).has_value(); }
  void kill() {
    proc_->signal(SIGKILL);
    proc_->wait(5s);
  }
  std::string output() const { return proc_->output(); }

 private:
  static inline int count_ = 0;
  std::unique_ptr<ChildProcess> proc_;
};

TEST_F(PeerTransportTest, KilledPeerProcessIsReportedDownAtOnceAndUpWhenRestarted) {
  TempDir dir("corral-peer-test");
  auto ports = portsFor({1, 2});
  auto child = std::make_unique<ChildServer>(dir, membershipToml(2, ports));
  ASSERT_TRUE(child->ready()) << child->output();
  Node a(1, ports);
  ASSERT_TRUE(a.waitUp(2)) << child->output();
  ASSERT_EQ(a.send(2, "ping 1"), PeerCode::kOk);
  ASSERT_TRUE(a.waitMessages(2, 1)) << child->output();
  EXPECT_EQ(a.sink().state().messages[2][0], "echo:ping 1");

  Clock::time_point killed = Clock::now();
  child->kill();
  ASSERT_TRUE(a.waitDown(2, 1, 5s));
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - killed);
  std::cout << "SIGKILLed peer reported down after " << ms.count() << " ms\n";
  EXPECT_LT(ms, 500ms);
  EXPECT_EQ(a.send(2, "nobody there"), PeerCode::kNotConnected);

  child = std::make_unique<ChildServer>(dir, membershipToml(2, ports));
  ASSERT_TRUE(child->ready()) << child->output();
  ASSERT_TRUE(a.waitUp(2, 2)) << child->output();
  ASSERT_EQ(a.send(2, "ping 2"), PeerCode::kOk);
  ASSERT_TRUE(a.waitMessages(2, 2)) << child->output();
  EXPECT_EQ(a.sink().state().messages[2][1], "echo:ping 2");
  EXPECT_EQ(a.sink().state().links[2], (std::vector<char>{'U', 'D', 'U'}));
}

}  // namespace
}  // namespace corral::testing
