// The corral shell's text: parsing command lines and ACL strings, and printing stats, ACLs,
// watch events and errors the way zkCli.sh does, so its users feel at home.
#pragma once

#include <corral/proto.h>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace corral::cli {

// "create -e /a 'hello world'" -> {"create", "-e", "/a", "hello world"}. Quotes (' or ")
// group words; a backslash escapes the next character.
std::vector<std::string> tokenize(const std::string& line);

struct ParsedCommand {
  std::string name;
  std::set<char> flags;                // flags without a value, e.g. 'e' for -e
  std::map<char, std::string> values;  // flags with a value, e.g. 'v' -> "3"
  std::vector<std::string> args;       // positional arguments
};

// Parses tokens[0] as the command and the rest by that command's flags. nullopt (with a
// usage message in *error) for an unknown command, unknown flag or wrong argument count.
std::optional<ParsedCommand> parseCommand(const std::vector<std::string>& tokens,
                                          std::string* error);
// "create [-e] [-s] [-c] [-t ttl] path [data] [acl]" etc.
std::string usage(const std::string& command);
std::string helpText();

// "cdrwa" <-> perms bits.
std::string permsText(int32_t perms);
std::optional<int32_t> parsePerms(const std::string& text);
// "world:anyone:cdrwa,digest:user:hash:r,ip:10.0.0.0/8:rw,auth::cdrwa". nullopt if malformed.
std::optional<std::vector<Acl>> parseAcl(const std::string& text);
// zkCli's getAcl output: "'world,'anyone\n: cdrwa\n" per entry.
std::string formatAcl(const std::vector<Acl>& acl);

// zkCli's stat block ("cZxid = 0x..." ... "numChildren = N"), one field per line.
std::string formatStat(const Stat& stat);
// "WatchedEvent state:SyncConnected type:NodeDataChanged path:/config"
std::string formatEvent(const WatchEvent& event);
std::string eventTypeName(EventType type);
std::string keeperStateName(KeeperState state);

// "Node does not exist: /x (NONODE)"
std::string errorText(ZkError err, const std::string& path);

}  // namespace corral::cli
