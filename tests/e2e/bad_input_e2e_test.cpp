// Hostile and broken input against a real corrald over raw ZeroMQ sockets: every bad frame
// gets an error answer or its connection dropped, and the server keeps serving everyone.
#include <corral/client.h>
#include <corral/codec.h>
#include <gtest/gtest.h>

#include <optional>
#include <random>
#include <string>
#include <zmq.hpp>

#include "corrald_process.h"
#include "temp_dir.h"

namespace corral::testing {
namespace {

using std::chrono::milliseconds;

// A raw native-protocol connection: one DEALER socket, frames in and out.
class RawConnection {
 public:
  RawConnection(zmq::context_t& ctx, const std::string& address)
      : socket_(ctx, zmq::socket_type::dealer) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.connect(address);
  }
  void send(const std::string& bytes) { socket_.send(zmq::buffer(bytes), zmq::send_flags::none); }
  // The next frame, or nothing within the timeout.
  std::optional<Frame> receive(milliseconds timeout = milliseconds(3000)) {
    zmq::pollitem_t item{static_cast<void*>(socket_), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, timeout) <= 0) return std::nullopt;
    zmq::message_t msg;
    if (!socket_.recv(msg, zmq::recv_flags::none)) return std::nullopt;
    Frame f;
    std::string err;
    if (!decodeFrame(std::string_view(static_cast<const char*>(msg.data()), msg.size()), &f, &err))
      ADD_FAILURE() << "server sent an undecodable frame: " << err;
    return f;
  }
  // Performs the session handshake; true when the server accepted it.
  bool handshake() {
    ConnectRequest c;
    c.timeout_ms = 10000;
    send(encodeConnect(c));
    auto f = receive();
    return f && f->kind == FrameKind::kConnectResponse && f->connected.err == ZkError::kOk &&
           f->connected.session_id != 0;
  }

 private:
  zmq::socket_t socket_;
};

class BadInputE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<CorraldProcess>(dir_);
    address_ = server_->waitServing();
    ASSERT_FALSE(address_.empty()) << server_->process().output();
    // A well-behaved client that must be unaffected by everything the tests throw.
    ClientOptions o;
    o.servers = {address_};
    bystander_ = std::make_unique<Client>(o);
    ASSERT_EQ(bystander_->connect(), ZkError::kOk);
    ASSERT_EQ(bystander_->create("/alive", "yes", CreateMode::kPersistent), ZkError::kOk);
  }

  void expectStillServing() {
    ASSERT_TRUE(server_->process().running()) << server_->process().output();
    std::string data;
    EXPECT_EQ(bystander_->getData("/alive", &data), ZkError::kOk);
    EXPECT_EQ(data, "yes");
    ClientOptions o;
    o.servers = {address_};
    Client fresh(o);
    EXPECT_EQ(fresh.connect(), ZkError::kOk);
    EXPECT_EQ(fresh.exists("/alive"), ZkError::kOk);
  }

  TempDir dir_{"corral-e2e-badinput"};
  std::unique_ptr<CorraldProcess> server_;
  std::string address_;
  std::unique_ptr<Client> bystander_;
  zmq::context_t ctx_;
};

TEST_F(BadInputE2eTest, GarbageBeforeTheHandshake) {
  RawConnection raw(ctx_, address_);
  raw.send("\xc1\xc1\xc1 this is not msgpack");
  raw.send(std::string(1, '\0'));
  raw.send("");
  expectStillServing();
}

TEST_F(BadInputE2eTest, RandomBytesAfterTheHandshake) {
  std::mt19937 rng(42);
  for (int i = 0; i < 20; ++i) {
    RawConnection raw(ctx_, address_);
    ASSERT_TRUE(raw.handshake());
    std::string junk(1 + rng() % 200, '\0');
    for (char& ch : junk) ch = static_cast<char>(rng());
    raw.send(junk);
  }
  expectStillServing();
}

TEST_F(BadInputE2eTest, TruncatedFramesAtEveryLength) {
  Request req;
  req.xid = 1;
  req.op.op = OpCode::kCreate;
  req.op.path = "/truncated";
  req.op.data = "some data";
  req.op.acl = Client::openAclUnsafe();
  std::string full = encodeRequest(req);
  RawConnection raw(ctx_, address_);
  ASSERT_TRUE(raw.handshake());
  for (size_t n = 1; n < full.size(); ++n) {
    RawConnection each(ctx_, address_);
    ASSERT_TRUE(each.handshake());
    each.send(full.substr(0, n));
  }
  expectStillServing();
  EXPECT_EQ(bystander_->exists("/truncated"), ZkError::kNoNode);
}

TEST_F(BadInputE2eTest, UnknownOpGetsAnErrorAnswer) {
  RawConnection raw(ctx_, address_);
  ASSERT_TRUE(raw.handshake());
  Request req;
  req.xid = 7;
  req.op.op = static_cast<OpCode>(999);
  req.op.path = "/x";
  raw.send(encodeRequest(req));
  auto reply = raw.receive();
  if (reply) {  // an error answer (the other allowed outcome is a dropped connection)
    ASSERT_EQ(reply->kind, FrameKind::kResponse);
    EXPECT_EQ(reply->response.xid, 7);
    EXPECT_NE(reply->response.err, ZkError::kOk);
  }
  expectStillServing();
}

TEST_F(BadInputE2eTest, RequestWithoutHandshakeIsRefused) {
  RawConnection raw(ctx_, address_);
  Request req;
  req.xid = 1;
  req.op.op = OpCode::kCreate;
  req.op.path = "/nohandshake";
  req.op.acl = Client::openAclUnsafe();
  raw.send(encodeRequest(req));
  auto reply = raw.receive(milliseconds(1000));
  if (reply) {
    EXPECT_FALSE(reply->kind == FrameKind::kResponse && reply->response.err == ZkError::kOk);
  }
  expectStillServing();
  EXPECT_EQ(bystander_->exists("/nohandshake"), ZkError::kNoNode);
}

TEST_F(BadInputE2eTest, OversizeFrameIsDroppedWithALogLine) {
  RawConnection raw(ctx_, address_);
  ASSERT_TRUE(raw.handshake());
  Request req;
  req.xid = 1;
  req.op.op = OpCode::kCreate;
  req.op.path = "/huge";
  req.op.data.assign(4 * 1024 * 1024, 'h');
  req.op.acl = Client::openAclUnsafe();
  raw.send(encodeRequest(req));
  EXPECT_TRUE(
      server_->process().waitForOutput("max_request_bytes", milliseconds(10000)).has_value())
      << server_->process().output();
  expectStillServing();
  EXPECT_EQ(bystander_->exists("/huge"), ZkError::kNoNode);
}

TEST_F(BadInputE2eTest, InvalidPathsAndOversizeDataGetErrors) {
  RawConnection raw(ctx_, address_);
  ASSERT_TRUE(raw.handshake());
  int32_t xid = 0;
  for (const char* path : {"", "no-slash", "/trailing/", "/a//b", "/a/./b", "/a/../b"}) {
    Request req;
    req.xid = ++xid;
    req.op.op = OpCode::kCreate;
    req.op.path = path;
    req.op.acl = Client::openAclUnsafe();
    raw.send(encodeRequest(req));
    auto reply = raw.receive();
    ASSERT_TRUE(reply.has_value()) << path;
    ASSERT_EQ(reply->kind, FrameKind::kResponse);
    EXPECT_EQ(reply->response.xid, xid);
    EXPECT_EQ(reply->response.err, ZkError::kBadArguments) << path;
  }
  expectStillServing();
}

}  // namespace
}  // namespace corral::testing
