// The corral shell's parsing and zkCli-compatible output.
#include <gtest/gtest.h>

#include "../cli_text.h"

namespace corral::cli {
namespace {

TEST(CliText, TokenizeHonoursQuotesAndEscapes) {
  EXPECT_EQ(tokenize("create -e /a 'hello world'"),
            (std::vector<std::string>{"create", "-e", "/a", "hello world"}));
  EXPECT_EQ(tokenize("set /a \"x y\"  z\\ w"),
            (std::vector<std::string>{"set", "/a", "x y", "z w"}));
  EXPECT_EQ(tokenize("create /empty ''"), (std::vector<std::string>{"create", "/empty", ""}));
  EXPECT_TRUE(tokenize("   ").empty());
}

TEST(CliText, ParsesFlagsValuesAndArguments) {
  std::string error;
  auto c = parseCommand({"create", "-e", "-s", "/q/n-", "data"}, &error);
  ASSERT_TRUE(c) << error;
  EXPECT_EQ(c->name, "create");
  EXPECT_EQ(c->flags, (std::set<char>{'e', 's'}));
  EXPECT_EQ(c->args, (std::vector<std::string>{"/q/n-", "data"}));

  c = parseCommand({"set", "-v", "3", "/a", "x"}, &error);
  ASSERT_TRUE(c) << error;
  EXPECT_EQ(c->values.at('v'), "3");
  EXPECT_EQ(c->args.size(), 2u);

  c = parseCommand({"create", "-t", "1000", "/ttl"}, &error);
  ASSERT_TRUE(c) << error;
  EXPECT_EQ(c->values.at('t'), "1000");
}

TEST(CliText, RejectsUnknownCommandsFlagsAndArity) {
  std::string error;
  EXPECT_FALSE(parseCommand({"frobnicate", "/a"}, &error));
  EXPECT_NE(error.find("unknown command"), std::string::npos);
  EXPECT_FALSE(parseCommand({"get", "-x", "/a"}, &error));
  EXPECT_NE(error.find("-x"), std::string::npos);
  EXPECT_FALSE(parseCommand({"get"}, &error));
  EXPECT_NE(error.find("usage: get"), std::string::npos);
  EXPECT_FALSE(parseCommand({"set", "-v"}, &error));
  EXPECT_FALSE(parseCommand({"delete", "/a", "/b"}, &error));
}

TEST(CliText, PermsRoundTrip) {
  EXPECT_EQ(permsText(kPermAll), "cdrwa");
  EXPECT_EQ(permsText(kPermRead | kPermWrite), "rw");
  EXPECT_EQ(parsePerms("cdrwa"), kPermAll);
  EXPECT_EQ(parsePerms("r"), kPermRead);
  EXPECT_FALSE(parsePerms("rx"));
}

TEST(CliText, ParsesAclLists) {
  auto acl = parseAcl("world:anyone:cdrwa,digest:bob:abc=:r,ip:10.0.0.0/8:rw,auth::cdrwa");
  ASSERT_TRUE(acl);
  ASSERT_EQ(acl->size(), 4u);
  EXPECT_EQ((*acl)[0], (Acl{kPermAll, Id{"world", "anyone"}}));
  EXPECT_EQ((*acl)[1], (Acl{kPermRead, Id{"digest", "bob:abc="}}));
  EXPECT_EQ((*acl)[2], (Acl{kPermRead | kPermWrite, Id{"ip", "10.0.0.0/8"}}));
  EXPECT_EQ((*acl)[3], (Acl{kPermAll, Id{"auth", ""}}));
  EXPECT_FALSE(parseAcl("world:anyone"));
  EXPECT_FALSE(parseAcl("world:anyone:xyz"));
  EXPECT_FALSE(parseAcl(""));
}

TEST(CliText, FormatsLikeZkCli) {
  EXPECT_EQ(formatAcl({Acl{kPermAll, Id{"world", "anyone"}}}), "'world,'anyone\n: cdrwa\n");
  Stat s;
  s.czxid = 0x10;
  s.version = 1;
  s.ephemeral_owner = 0x100000000000001;
  s.data_length = 5;
  std::string text = formatStat(s);
  EXPECT_NE(text.find("cZxid = 0x10\n"), std::string::npos) << text;
  EXPECT_NE(text.find("dataVersion = 1\n"), std::string::npos);
  EXPECT_NE(text.find("ephemeralOwner = 0x100000000000001\n"), std::string::npos);
  EXPECT_NE(text.find("dataLength = 5\n"), std::string::npos);
  EXPECT_NE(text.find("numChildren = 0\n"), std::string::npos);

  WatchEvent e;
  e.type = EventType::kNodeDataChanged;
  e.path = "/config";
  EXPECT_EQ(formatEvent(e), "WatchedEvent state:SyncConnected type:NodeDataChanged path:/config");
  EXPECT_EQ(errorText(ZkError::kNoNode, "/x"), "Node does not exist: /x (NONODE)");
  EXPECT_NE(errorText(ZkError::kBadVersion, "/x").find("BADVERSION"), std::string::npos);
}

}  // namespace
}  // namespace corral::cli
