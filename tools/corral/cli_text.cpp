#include "cli_text.h"

#include <cstdio>
#include <ctime>
#include <sstream>

namespace corral::cli {
namespace {

struct CommandSpec {
  const char* name;
  const char* bool_flags;
  const char* value_flags;
  size_t min_args;
  size_t max_args;
  const char* usage;
};

const CommandSpec kCommands[] = {
    {"create", "esc", "t", 1, 3, "create [-e] [-s] [-c] [-t ttl] path [data] [acl]"},
    {"get", "sw", "", 1, 1, "get [-s] [-w] path"},
    {"set", "s", "v", 2, 2, "set [-s] [-v version] path data"},
    {"stat", "w", "", 1, 1, "stat [-w] path"},
    {"ls", "swR", "", 1, 1, "ls [-s] [-w] [-R] path"},
    {"delete", "", "v", 1, 1, "delete [-v version] path"},
    {"deleteall", "", "", 1, 1, "deleteall path"},
    {"getAcl", "s", "", 1, 1, "getAcl [-s] path"},
    {"setAcl", "sR", "v", 2, 2, "setAcl [-s] [-v version] [-R] path acl"},
    {"addauth", "", "", 2, 2, "addauth scheme auth"},
    {"getEphemerals", "", "", 0, 1, "getEphemerals [path]"},
    {"getAllChildrenNumber", "", "", 1, 1, "getAllChildrenNumber path"},
    {"sync", "", "", 1, 1, "sync path"},
    {"whoami", "", "", 0, 0, "whoami"},
    {"addWatch", "", "m", 1, 1, "addWatch [-m PERSISTENT|PERSISTENT_RECURSIVE] path"},
    {"removewatches", "cda", "", 1, 1, "removewatches path [-c|-d|-a]"},
    {"close", "", "", 0, 0, "close"},
    {"connect", "", "", 1, 1, "connect host:port"},
    {"history", "", "", 0, 0, "history"},
    {"help", "", "", 0, 1, "help [command]"},
    {"quit", "", "", 0, 0, "quit"},
    {"exit", "", "", 0, 0, "exit"},
};

const CommandSpec* findSpec(const std::string& name) {
  for (const CommandSpec& s : kCommands)
    if (name == s.name) return &s;
  return nullptr;
}

std::string hex(int64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

// Java's Date.toString(): "Mon Nov 23 04:00:00 UTC 2026".
std::string javaDate(int64_t ms) {
  time_t secs = static_cast<time_t>(ms / 1000);
  struct tm tm;
  localtime_r(&secs, &tm);
  char buf[64];
  std::strftime(buf, sizeof(buf), "%a %b %d %H:%M:%S %Z %Y", &tm);
  return buf;
}

}  // namespace

std::vector<std::string> tokenize(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  bool in_token = false;
  char quote = 0;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (c == '\\' && i + 1 < line.size()) {
      cur.push_back(line[++i]);
      in_token = true;
    } else if (quote != 0) {
      if (c == quote)
        quote = 0;
      else
        cur.push_back(c);
    } else if (c == '\'' || c == '"') {
      quote = c;
      in_token = true;
    } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      if (in_token) out.push_back(cur);
      cur.clear();
      in_token = false;
    } else {
      cur.push_back(c);
      in_token = true;
    }
  }
  if (in_token) out.push_back(cur);
  return out;
}

std::optional<ParsedCommand> parseCommand(const std::vector<std::string>& tokens,
                                          std::string* error) {
  if (tokens.empty()) {
    *error = "no command";
    return std::nullopt;
  }
  const CommandSpec* spec = findSpec(tokens[0]);
  if (spec == nullptr) {
    *error = "unknown command '" + tokens[0] + "'; try help";
    return std::nullopt;
  }
  ParsedCommand cmd;
  cmd.name = tokens[0];
  std::string bools = spec->bool_flags;
  std::string values = spec->value_flags;
  for (size_t i = 1; i < tokens.size(); ++i) {
    const std::string& t = tokens[i];
    bool flag_like = t.size() == 2 && t[0] == '-' && std::isalpha(static_cast<unsigned char>(t[1]));
    if (flag_like && bools.find(t[1]) != std::string::npos) {
      cmd.flags.insert(t[1]);
    } else if (flag_like && values.find(t[1]) != std::string::npos) {
      if (i + 1 >= tokens.size()) {
        *error = "option " + t + " needs a value; usage: " + spec->usage;
        return std::nullopt;
      }
      cmd.values[t[1]] = tokens[++i];
    } else if (flag_like) {
      *error = "unknown option " + t + "; usage: " + spec->usage;
      return std::nullopt;
    } else {
      cmd.args.push_back(t);
    }
  }
  if (cmd.args.size() < spec->min_args || cmd.args.size() > spec->max_args) {
    *error = std::string("usage: ") + spec->usage;
    return std::nullopt;
  }
  return cmd;
}

std::string usage(const std::string& command) {
  const CommandSpec* spec = findSpec(command);
  return spec != nullptr ? spec->usage : "";
}

std::string helpText() {
  std::string out = "corral shell commands:\n";
  for (const CommandSpec& s : kCommands) out += std::string("\t") + s.usage + "\n";
  return out;
}

std::string permsText(int32_t perms) {
  std::string s;
  if (perms & kPermCreate) s += 'c';
  if (perms & kPermDelete) s += 'd';
  if (perms & kPermRead) s += 'r';
  if (perms & kPermWrite) s += 'w';
  if (perms & kPermAdmin) s += 'a';
  return s;
}

std::optional<int32_t> parsePerms(const std::string& text) {
  int32_t perms = 0;
  for (char c : text) {
    switch (c) {
      case 'c':
        perms |= kPermCreate;
        break;
      case 'd':
        perms |= kPermDelete;
        break;
      case 'r':
        perms |= kPermRead;
        break;
      case 'w':
        perms |= kPermWrite;
        break;
      case 'a':
        perms |= kPermAdmin;
        break;
      default:
        return std::nullopt;
    }
  }
  return perms;
}

std::optional<std::vector<Acl>> parseAcl(const std::string& text) {
  std::vector<Acl> out;
  std::stringstream ss(text);
  for (std::string entry; std::getline(ss, entry, ',');) {
    // scheme:id:perms, where the id itself may contain ':' (digest user:hash, IPv6).
    size_t first = entry.find(':');
    size_t last = entry.rfind(':');
    if (first == std::string::npos || first == last || first == 0) return std::nullopt;
    auto perms = parsePerms(entry.substr(last + 1));
    if (!perms) return std::nullopt;
    out.push_back(
        Acl{*perms, Id{entry.substr(0, first), entry.substr(first + 1, last - first - 1)}});
  }
  if (out.empty()) return std::nullopt;
  return out;
}

std::string formatAcl(const std::vector<Acl>& acl) {
  std::string out;
  for (const Acl& a : acl)
    out += "'" + a.id.scheme + ",'" + a.id.id + "\n: " + permsText(a.perms) + "\n";
  return out;
}

std::string formatStat(const Stat& s) {
  std::ostringstream os;
  os << "cZxid = " << hex(s.czxid) << "\n"
     << "ctime = " << javaDate(s.ctime) << "\n"
     << "mZxid = " << hex(s.mzxid) << "\n"
     << "mtime = " << javaDate(s.mtime) << "\n"
     << "pZxid = " << hex(s.pzxid) << "\n"
     << "cversion = " << s.cversion << "\n"
     << "dataVersion = " << s.version << "\n"
     << "aclVersion = " << s.aversion << "\n"
     << "ephemeralOwner = " << hex(s.ephemeral_owner) << "\n"
     << "dataLength = " << s.data_length << "\n"
     << "numChildren = " << s.num_children << "\n";
  return os.str();
}

std::string eventTypeName(EventType type) {
  switch (type) {
    case EventType::kNone:
      return "None";
    case EventType::kNodeCreated:
      return "NodeCreated";
    case EventType::kNodeDeleted:
      return "NodeDeleted";
    case EventType::kNodeDataChanged:
      return "NodeDataChanged";
    case EventType::kNodeChildrenChanged:
      return "NodeChildrenChanged";
    case EventType::kDataWatchRemoved:
      return "DataWatchRemoved";
    case EventType::kChildWatchRemoved:
      return "ChildWatchRemoved";
    case EventType::kPersistentWatchRemoved:
      return "PersistentWatchRemoved";
  }
  return "Unknown";
}

std::string keeperStateName(KeeperState state) {
  switch (state) {
    case KeeperState::kDisconnected:
      return "Disconnected";
    case KeeperState::kSyncConnected:
      return "SyncConnected";
    case KeeperState::kAuthFailed:
      return "AuthFailed";
    case KeeperState::kConnectedReadOnly:
      return "ConnectedReadOnly";
    case KeeperState::kSaslAuthenticated:
      return "SaslAuthenticated";
    case KeeperState::kExpired:
      return "Expired";
    case KeeperState::kClosed:
      return "Closed";
  }
  return "Unknown";
}

std::string formatEvent(const WatchEvent& e) {
  std::string out =
      "WatchedEvent state:" + keeperStateName(e.state) + " type:" + eventTypeName(e.type);
  if (!e.path.empty()) out += " path:" + e.path;
  return out;
}

std::string errorText(ZkError err, const std::string& path) {
  const char* what;
  switch (err) {
    case ZkError::kNoNode:
      what = "Node does not exist";
      break;
    case ZkError::kNodeExists:
      what = "Node already exists";
      break;
    case ZkError::kBadVersion:
      what = "version No is not valid";
      break;
    case ZkError::kNotEmpty:
      what = "Node not empty";
      break;
    case ZkError::kNoAuth:
      what = "Insufficient permission";
      break;
    case ZkError::kInvalidAcl:
      what = "Acl is not valid";
      break;
    case ZkError::kBadArguments:
      what = "Bad arguments";
      break;
    case ZkError::kNoChildrenForEphemerals:
      what = "Ephemerals cannot have children";
      break;
    case ZkError::kSessionExpired:
      what = "Session expired";
      break;
    case ZkError::kConnectionLoss:
      what = "Connection lost";
      break;
    case ZkError::kOperationTimeout:
      what = "Operation timed out";
      break;
    case ZkError::kAuthFailed:
      what = "Authentication failed";
      break;
    case ZkError::kNoWatcher:
      what = "No such watcher";
      break;
    case ZkError::kUnimplemented:
      what = "Operation not supported";
      break;
    default:
      what = "Error";
      break;
  }
  std::string out = what;
  if (!path.empty()) out += ": " + path;
  return out + " (" + zkErrorName(err) + ")";
}

}  // namespace corral::cli
