// The zkwire transport with ZooKeeper's own C client (libzookeeper-mt, unmodified) and with
// hostile raw TCP input: every bad frame costs only its own connection.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zookeeper/zookeeper.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>

#include "corrald_process.h"
#include "temp_dir.h"

namespace corral::testing {
namespace {

using std::chrono::milliseconds;

// Raw TCP to the zkwire port.
class Tcp {
 public:
  explicit Tcp(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
    timeval tv{5, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  }
  ~Tcp() { ::close(fd_); }
  bool connected() const { return connected_; }
  void send(const std::string& bytes) {
    ssize_t ignored = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    (void)ignored;
  }
  // Everything until the server closes (or 5 s pass).
  std::string readAll() {
    std::string out;
    char buf[4096];
    for (ssize_t n; (n = ::recv(fd_, buf, sizeof(buf), 0)) > 0;) out.append(buf, n);
    return out;
  }
  // True when the server closes the connection within the timeout (anything it sends
  // before closing is skipped).
  bool closedByServer() {
    char buf[4096];
    ssize_t n;
    while ((n = ::recv(fd_, buf, sizeof(buf), 0)) > 0) {
    }
    return n == 0;
  }
  // One length-prefixed frame's body ("" on a short read).
  std::string readFrame() {
    auto exact = [&](size_t n) {
      std::string out(n, '\0');
      size_t got = 0;
      while (got < n) {
        ssize_t r = ::recv(fd_, out.data() + got, n - got, 0);
        if (r <= 0) return std::string();
        got += static_cast<size_t>(r);
      }
      return out;
    };
    std::string len = exact(4);
    if (len.size() != 4) return "";
    uint32_t n = (static_cast<uint8_t>(len[0]) << 24) | (static_cast<uint8_t>(len[1]) << 16) |
                 (static_cast<uint8_t>(len[2]) << 8) | static_cast<uint8_t>(len[3]);
    return exact(n);
  }

 private:
  int fd_;
  bool connected_ = false;
};

std::string be32(int32_t v) {
  std::string s(4, '\0');
  for (int i = 0; i < 4; ++i) s[i] = static_cast<char>((v >> (24 - 8 * i)) & 0xff);
  return s;
}
std::string be64(int64_t v) {
  return be32(static_cast<int32_t>(v >> 32)) + be32(static_cast<int32_t>(v));
}
std::string frame(const std::string& body) {
  return be32(static_cast<int32_t>(body.size())) + body;
}
std::string connectRequest() {
  return frame(be32(0) + be64(0) + be32(10000) + be64(0) + be32(16) + std::string(16, '\0'));
}

class ZkwireTest : public ::testing::Test {
 protected:
  void SetUp() override {
    zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
    CorraldOptions o;
    o.extra_toml =
        "[client.zkwire]\nlisten = \"127.0.0.1:0\"\nmax_connections_per_ip = 20\n"
        "frame_timeout_ms = 500\n";
    server_ = std::make_unique<CorraldProcess>(dir_, o);
    ASSERT_FALSE(server_->waitServing().empty()) << server_->process().output();
    auto at = server_->process().waitForOutput("corrald serving: zkwire on 127.0.0.1:",
                                               milliseconds(10000));
    ASSERT_TRUE(at.has_value()) << server_->process().output();
    port_ = std::stoi(server_->process().output().substr(*at));
    hosts_ = "127.0.0.1:" + std::to_string(port_);
  }

  // A connected C client handle.
  zhandle_t* connect() {
    struct Ctx {
      std::mutex mu;
      std::condition_variable cv;
      bool connected = false;
    };
    auto* ctx = new Ctx;
    contexts_.emplace_back(ctx, [](void* p) { delete static_cast<Ctx*>(p); });
    zhandle_t* zh = zookeeper_init(
        hosts_.c_str(),
        [](zhandle_t*, int type, int state, const char*, void* c) {
          auto* x = static_cast<Ctx*>(c);
          if (type == ZOO_SESSION_EVENT && state == ZOO_CONNECTED_STATE) {
            std::lock_guard<std::mutex> lock(x->mu);
            x->connected = true;
            x->cv.notify_all();
          }
        },
        10000, nullptr, ctx, 0);
    std::unique_lock<std::mutex> lock(ctx->mu);
    EXPECT_TRUE(ctx->cv.wait_for(lock, std::chrono::seconds(10), [&] { return ctx->connected; }));
    handles_.push_back(zh);
    return zh;
  }

  void TearDown() override {
    for (zhandle_t* zh : handles_)
      if (zh != nullptr) zookeeper_close(zh);
  }

  void expectStillServing() {
    zhandle_t* zh = connect();
    char buf[64];
    EXPECT_EQ(zoo_create(zh, "/alive", "x", 1, &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL_SEQUENTIAL, buf,
                         sizeof(buf)),
              ZOK);
  }

  TempDir dir_{"corral-zkwire"};
  std::unique_ptr<CorraldProcess> server_;
  int port_ = 0;
  std::string hosts_;
  std::vector<zhandle_t*> handles_;
  std::vector<std::unique_ptr<void, void (*)(void*)>> contexts_;
};

TEST_F(ZkwireTest, TheCClientDoesCrudContainersTtlWatchesAndMulti) {
  zhandle_t* zh = connect();
  char path[128];
  ASSERT_EQ(
      zoo_create(zh, "/c", "hello", 5, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, path, sizeof(path)),
      ZOK);
  EXPECT_STREQ(path, "/c");
  EXPECT_EQ(zoo_create(zh, "/c", "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, path, sizeof(path)),
            ZNODEEXISTS);
  char buf[64];
  int len = sizeof(buf);
  struct ::Stat stat;
  ASSERT_EQ(zoo_get(zh, "/c", 0, buf, &len, &stat), ZOK);
  EXPECT_EQ(std::string(buf, len), "hello");
  EXPECT_EQ(zoo_set(zh, "/c", "v2", 2, 5), ZBADVERSION);

  // A data watch set by one handle fires on a change by another.
  std::atomic<int> fired{0};
  len = sizeof(buf);
  ASSERT_EQ(zoo_wget(
                zh, "/c",
                [](zhandle_t*, int type, int, const char* p, void* c) {
                  if (type == ZOO_CHANGED_EVENT && std::string(p) == "/c")
                    static_cast<std::atomic<int>*>(c)->fetch_add(1);
                },
                &fired, buf, &len, &stat),
            ZOK);
  zhandle_t* other = connect();
  ASSERT_EQ(zoo_set(other, "/c", "v2", 2, 0), ZOK);
  for (int i = 0; i < 500 && fired == 0; ++i) std::this_thread::sleep_for(milliseconds(10));
  EXPECT_EQ(fired.load(), 1);

  // Containers and TTL nodes, which kazoo 2.8 cannot create.
  ASSERT_EQ(zoo_create(zh, "/box", "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_CONTAINER, path, sizeof(path)),
            ZOK);
  ASSERT_EQ(
      zoo_create(zh, "/box/item", "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, path, sizeof(path)),
      ZOK);
  ASSERT_EQ(zoo_delete(zh, "/box/item", -1), ZOK);
  ASSERT_EQ(zoo_create_ttl(zh, "/ttl", "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT_WITH_TTL, 200,
                           path, sizeof(path)),
            ZOK);
  bool box_gone = false, ttl_gone = false;
  for (int i = 0; i < 500 && !(box_gone && ttl_gone); ++i) {
    box_gone = zoo_exists(zh, "/box", 0, &stat) == ZNONODE;
    ttl_gone = zoo_exists(zh, "/ttl", 0, &stat) == ZNONODE;
    std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_TRUE(box_gone);
  EXPECT_TRUE(ttl_gone);

  // Multi: all or nothing.
  zoo_op_t ops[2];
  zoo_op_result_t results[2];
  char created[64];
  zoo_create_op_init(&ops[0], "/m", "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, created,
                     sizeof(created));
  zoo_check_op_init(&ops[1], "/c", 99);
  EXPECT_EQ(zoo_multi(zh, 2, ops, results), ZBADVERSION);
  EXPECT_EQ(zoo_exists(zh, "/m", 0, &stat), ZNONODE);
  zoo_check_op_init(&ops[1], "/c", 1);
  EXPECT_EQ(zoo_multi(zh, 2, ops, results), ZOK);
  EXPECT_EQ(results[0].err, ZOK);
  EXPECT_EQ(zoo_exists(zh, "/m", 0, &stat), ZOK);

  // Ephemerals go with their session.
  ASSERT_EQ(
      zoo_create(other, "/eph", "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL, path, sizeof(path)),
      ZOK);
  zookeeper_close(other);
  handles_[1] = nullptr;
  EXPECT_EQ(zoo_exists(zh, "/eph", 0, &stat), ZNONODE);
}

TEST_F(ZkwireTest, FourLetterWords) {
  // A session with an ephemeral and a watch, so the kernel's numbers show.
  zhandle_t* zh = connect();
  char path[64];
  ASSERT_EQ(zoo_create(zh, "/lw", "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL, path, sizeof(path)),
            ZOK);
  struct ::Stat st;
  ASSERT_EQ(zoo_exists(zh, "/lw", 1, &st), ZOK);
  {
    Tcp t(port_);
    t.send("srvr");
    std::string out = t.readAll();
    EXPECT_NE(out.find("Node count: 5"), std::string::npos) << out;  // 4 built in + /lw
  }
  {
    Tcp t(port_);
    t.send("wchs");
    std::string out = t.readAll();
    EXPECT_NE(out.find("1 connections watching 1 paths\nTotal watches:1"), std::string::npos)
        << out;
  }
  {
    Tcp t(port_);
    t.send("dump");
    std::string out = t.readAll();
    EXPECT_NE(out.find("Sessions with Ephemerals (1):"), std::string::npos) << out;
    EXPECT_NE(out.find("\t/lw"), std::string::npos) << out;
  }
  {
    Tcp t(port_);
    t.send("cons");
    EXPECT_NE(t.readAll().find("sid=0x"), std::string::npos);
  }
  {
    Tcp t(port_);
    t.send("ruok");
    EXPECT_EQ(t.readAll(), "imok");
  }
  {
    Tcp t(port_);
    t.send("srvr");
    std::string out = t.readAll();
    EXPECT_NE(out.find("Zookeeper version:"), std::string::npos) << out;
    EXPECT_NE(out.find("Mode: standalone"), std::string::npos) << out;
  }
  {
    Tcp t(port_);
    t.send("mntr");
    std::string out = t.readAll();
    EXPECT_NE(out.find("zk_server_state\tstandalone"), std::string::npos) << out;
    EXPECT_NE(out.find("zk_znode_count\t5"), std::string::npos) << out;
    EXPECT_NE(out.find("zk_ephemerals_count\t1"), std::string::npos) << out;
  }
  {
    Tcp t(port_);
    t.send("isro");
    EXPECT_EQ(t.readAll(), "rw");
  }
}

TEST_F(ZkwireTest, BadFramesCloseOnlyTheirConnection) {
  zhandle_t* bystander = connect();
  {
    Tcp t(port_);  // a length far above max_request_bytes
    t.send(be32(64 * 1024 * 1024));
    EXPECT_TRUE(t.closedByServer());
  }
  {
    Tcp t(port_);  // a negative length
    t.send(be32(-5));
    EXPECT_TRUE(t.closedByServer());
  }
  {
    Tcp t(port_);  // garbage instead of a ConnectRequest
    t.send(frame("garbage!"));
    EXPECT_TRUE(t.closedByServer());
  }
  {
    Tcp t(port_);  // an unknown opcode after a good handshake
    t.send(connectRequest());
    ASSERT_EQ(t.readFrame().size(), 37u);  // ConnectResponse: the session is there
    t.send(frame(be32(1) + be32(999)));
    EXPECT_TRUE(t.closedByServer());
  }
  {
    Tcp t(port_);  // a truncated create record
    t.send(connectRequest());
    ASSERT_FALSE(t.readFrame().empty());
    t.send(frame(be32(1) + be32(1) + be32(100) + "/short"));
    EXPECT_TRUE(t.closedByServer());
  }
  {
    Tcp t(port_);  // slowloris inside the length itself
    t.send(connectRequest());
    ASSERT_FALSE(t.readFrame().empty());
    t.send(std::string("\0\0", 2));
    EXPECT_TRUE(t.closedByServer());
  }
  {
    Tcp t(port_);  // slowloris: half a frame, then silence
    t.send(be32(100) + "only a little");
    EXPECT_TRUE(t.closedByServer());  // frame_timeout_ms = 500
  }
  EXPECT_TRUE(server_->process()
                  .waitForOutput("exceeds max_request_bytes", milliseconds(5000))
                  .has_value());
  EXPECT_TRUE(
      server_->process().waitForOutput("unknown opcode 999", milliseconds(5000)).has_value());
  struct ::Stat stat;
  EXPECT_EQ(zoo_exists(bystander, "/", 0, &stat), ZOK);
  expectStillServing();
}

TEST_F(ZkwireTest, ConnectionsPerAddressAreCapped) {
  std::vector<std::unique_ptr<Tcp>> flood;
  for (int i = 0; i < 20; ++i) flood.push_back(std::make_unique<Tcp>(port_));
  Tcp extra(port_);
  EXPECT_TRUE(extra.closedByServer());
  EXPECT_TRUE(
      server_->process().waitForOutput("max_connections_per_ip", milliseconds(5000)).has_value());
  flood.clear();
  // Once they are gone, clients are welcome again.
  bool served = false;
  for (int i = 0; i < 100 && !served; ++i) {
    Tcp t(port_);
    t.send("ruok");
    served = t.readAll() == "imok";
    if (!served) std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_TRUE(served);
}

}  // namespace
}  // namespace corral::testing
