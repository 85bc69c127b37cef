#include "shell.h"

#include <deque>
#include <ostream>
#include <sstream>

namespace corral::cli {

std::vector<std::string> serverList(const std::string& servers) {
  std::vector<std::string> out;
  std::stringstream ss(servers);
  for (std::string s; std::getline(ss, s, ',');) {
    if (s.empty()) continue;
    out.push_back(s.find("://") == std::string::npos ? "tcp://" + s : s);
  }
  return out;
}

Shell::Shell(std::ostream& out, std::ostream& err, int32_t session_timeout_ms)
    : out_(out), err_(err), timeout_ms_(session_timeout_ms) {}

// The client goes first: its thread may still call back into this shell.
Shell::~Shell() {
  client_.reset();
}

bool Shell::connected() const {
  return client_ != nullptr && client_->state() == KeeperState::kSyncConnected;
}

int Shell::connect(const std::string& servers) {
  servers_ = servers;
  client_.reset();
  ClientOptions o;
  o.servers = serverList(servers);
  o.session_timeout_ms = timeout_ms_;
  client_ = std::make_unique<Client>(o);
  client_->setSessionListener([this](KeeperState s) {
    // Connected and closed are the shell's own doing; losses and expiry are news.
    if (s == KeeperState::kSyncConnected || s == KeeperState::kClosed) return;
    WatchEvent e;
    e.type = EventType::kNone;
    e.state = s;
    print(formatEvent(e) + "\n");
  });
  ZkError e = client_->connect();
  if (e == ZkError::kBadArguments) {
    std::lock_guard<std::mutex> lock(mu_);
    err_ << "bad server address '" << servers << "' (expected host:port or tcp://host:port)\n";
    err_.flush();
    client_.reset();
    return kExitUsage;
  }
  if (e != ZkError::kOk) {
    std::lock_guard<std::mutex> lock(mu_);
    err_ << "cannot connect to " << servers << ": " << zkErrorName(e) << "\n";
    err_.flush();
    return kExitNoConnection;
  }
  return kExitOk;
}

void Shell::print(const std::string& text) {
  std::lock_guard<std::mutex> lock(mu_);
  out_ << text;
  out_.flush();
}

WatchCallback Shell::printer() {
  return [this](const WatchEvent& e) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      out_ << formatEvent(e) << "\n";
      out_.flush();
      ++events_printed_;
    }
    cv_.notify_all();
  };
}

void Shell::waitForEvents(size_t n) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return events_printed_ >= n; });
}

int Shell::fail(ZkError err, const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  err_ << errorText(err, path) << "\n";
  err_.flush();
  return kExitZkError;
}

int Shell::deleteAll(const std::string& path) {
  std::vector<std::string> children;
  ZkError e = client_->getChildren(path, &children);
  if (e != ZkError::kOk) return fail(e, path);
  for (const std::string& c : children) {
    int rc = deleteAll(path == "/" ? "/" + c : path + "/" + c);
    if (rc != kExitOk) return rc;
  }
  if (path == "/") return kExitOk;
  e = client_->remove(path);
  return e == ZkError::kOk || e == ZkError::kNoNode ? kExitOk : fail(e, path);
}

int Shell::listRecursive(const std::string& root) {
  std::deque<std::string> queue = {root};
  std::string text;
  while (!queue.empty()) {
    std::string p = queue.front();
    queue.pop_front();
    text += p + "\n";
    std::vector<std::string> children;
    ZkError e = client_->getChildren(p, &children);
    if (e == ZkError::kNoNode && p != root) continue;
    if (e != ZkError::kOk) return fail(e, p);
    for (const std::string& c : children) queue.push_back(p == "/" ? "/" + c : p + "/" + c);
  }
  print(text);
  return kExitOk;
}

int Shell::setAclRecursive(const std::string& path, const std::vector<Acl>& acl, int32_t version) {
  ZkError e = client_->setAcl(path, acl, version);
  if (e != ZkError::kOk) return fail(e, path);
  std::vector<std::string> children;
  e = client_->getChildren(path, &children);
  if (e != ZkError::kOk) return fail(e, path);
  for (const std::string& c : children) {
    int rc = setAclRecursive(path == "/" ? "/" + c : path + "/" + c, acl, -1);
    if (rc != kExitOk) return rc;
  }
  return kExitOk;
}

int Shell::run(const ParsedCommand& cmd) {
  const std::string& name = cmd.name;
  auto has = [&](char f) { return cmd.flags.count(f) != 0; };
  auto arg = [&](size_t i) { return i < cmd.args.size() ? cmd.args[i] : std::string(); };
  auto version = [&](int32_t* v) {
    auto it = cmd.values.find('v');
    if (it == cmd.values.end()) return true;
    try {
      *v = std::stoi(it->second);
      return true;
    } catch (...) {
      return false;
    }
  };

  if (name == "quit" || name == "exit") {
    if (client_) client_->close();
    done_ = true;
    return kExitOk;
  }
  if (name == "help") {
    print(cmd.args.empty() ? helpText() : usage(cmd.args[0]) + "\n");
    return kExitOk;
  }
  if (name == "history") {
    std::string text;
    for (size_t i = 0; i < history_.size(); ++i)
      text += std::to_string(i) + " - " + history_[i] + "\n";
    print(text);
    return kExitOk;
  }
  if (name == "connect") return connect(arg(0));
  if (name == "close") {
    if (client_) client_->close();
    client_.reset();
    return kExitOk;
  }
  if (!client_) {
    std::lock_guard<std::mutex> lock(mu_);
    err_ << "not connected; use connect host:port\n";
    return kExitNoConnection;
  }

  const std::string path = arg(0);
  if (name == "create") {
    CreateMode mode = CreateMode::kPersistent;
    bool eph = has('e'), seq = has('s');
    int64_t ttl = 0;
    if (cmd.values.count('t')) {
      try {
        ttl = std::stoll(cmd.values.at('t'));
      } catch (...) {
        return fail(ZkError::kBadArguments, path);
      }
      if (eph) return fail(ZkError::kBadArguments, path);
      mode = seq ? CreateMode::kPersistentSequentialWithTtl : CreateMode::kPersistentWithTtl;
    } else if (has('c')) {
      if (eph || seq) return fail(ZkError::kBadArguments, path);
      mode = CreateMode::kContainer;
    } else if (eph) {
      mode = seq ? CreateMode::kEphemeralSequential : CreateMode::kEphemeral;
    } else if (seq) {
      mode = CreateMode::kPersistentSequential;
    }
    std::vector<Acl> acl = Client::openAclUnsafe();
    if (cmd.args.size() > 2) {
      auto parsed = parseAcl(arg(2));
      if (!parsed) {
        std::lock_guard<std::mutex> lock(mu_);
        err_ << "malformed acl '" << arg(2) << "' (expected scheme:id:perms[,...])\n";
        return kExitUsage;
      }
      acl = *parsed;
    }
    std::string created;
    ZkError e = client_->create(path, arg(1), mode, &created, nullptr, acl, ttl);
    if (e != ZkError::kOk) return fail(e, path);
    print("Created " + created + "\n");
    return kExitOk;
  }
  if (name == "get") {
    std::string data;
    Stat stat;
    ZkError e = client_->getData(path, &data, &stat, has('w') ? printer() : nullptr);
    if (e != ZkError::kOk) return fail(e, path);
    print(data + "\n" + (has('s') ? formatStat(stat) : ""));
    return kExitOk;
  }
  if (name == "set") {
    int32_t v = -1;
    if (!version(&v)) return fail(ZkError::kBadArguments, path);
    Stat stat;
    ZkError e = client_->setData(path, arg(1), v, &stat);
    if (e != ZkError::kOk) return fail(e, path);
    if (has('s')) print(formatStat(stat));
    return kExitOk;
  }
  if (name == "stat") {
    Stat stat;
    ZkError e = client_->exists(path, &stat, has('w') ? printer() : nullptr);
    if (e != ZkError::kOk) return fail(e, path);
    print(formatStat(stat));
    return kExitOk;
  }
  if (name == "ls") {
    if (has('R')) return listRecursive(path);
    std::vector<std::string> children;
    Stat stat;
    ZkError e = client_->getChildren(path, &children, &stat, has('w') ? printer() : nullptr);
    if (e != ZkError::kOk) return fail(e, path);
    std::string text = "[";
    for (size_t i = 0; i < children.size(); ++i) text += (i ? ", " : "") + children[i];
    text += "]\n";
    if (has('s')) text += formatStat(stat);
    print(text);
    return kExitOk;
  }
  if (name == "delete") {
    int32_t v = -1;
    if (!version(&v)) return fail(ZkError::kBadArguments, path);
    ZkError e = client_->remove(path, v);
    return e == ZkError::kOk ? kExitOk : fail(e, path);
  }
  if (name == "deleteall") return deleteAll(path);
  if (name == "getAcl") {
    std::vector<Acl> acl;
    Stat stat;
    ZkError e = client_->getAcl(path, &acl, &stat);
    if (e != ZkError::kOk) return fail(e, path);
    print(formatAcl(acl) + (has('s') ? formatStat(stat) : ""));
    return kExitOk;
  }
  if (name == "setAcl") {
    int32_t v = -1;
    if (!version(&v)) return fail(ZkError::kBadArguments, path);
    auto acl = parseAcl(arg(1));
    if (!acl) {
      std::lock_guard<std::mutex> lock(mu_);
      err_ << "malformed acl '" << arg(1) << "' (expected scheme:id:perms[,...])\n";
      return kExitUsage;
    }
    if (has('R')) return setAclRecursive(path, *acl, v);
    Stat stat;
    ZkError e = client_->setAcl(path, *acl, v, &stat);
    if (e != ZkError::kOk) return fail(e, path);
    if (has('s')) print(formatStat(stat));
    return kExitOk;
  }
  if (name == "addauth") {
    ZkError e = client_->addAuth(arg(0), arg(1));
    return e == ZkError::kOk ? kExitOk : fail(e, "");
  }
  if (name == "getEphemerals") {
    std::vector<std::string> paths;
    ZkError e = client_->getEphemerals(cmd.args.empty() ? "/" : path, &paths);
    if (e != ZkError::kOk) return fail(e, path);
    std::string text = "[";
    for (size_t i = 0; i < paths.size(); ++i) text += (i ? ", " : "") + paths[i];
    print(text + "]\n");
    return kExitOk;
  }
  if (name == "getAllChildrenNumber") {
    int32_t count = 0;
    ZkError e = client_->getAllChildrenNumber(path, &count);
    if (e != ZkError::kOk) return fail(e, path);
    print(std::to_string(count) + "\n");
    return kExitOk;
  }
  if (name == "sync") {
    ZkError e = client_->sync(path);
    if (e != ZkError::kOk) return fail(e, path);
    print("Sync is OK\n");
    return kExitOk;
  }
  if (name == "whoami") {
    std::vector<Id> ids;
    ZkError e = client_->whoAmI(&ids);
    if (e != ZkError::kOk) return fail(e, "");
    std::string text = "Auth scheme: User\n";
    for (const Id& id : ids) text += id.scheme + ": " + id.id + "\n";
    print(text);
    return kExitOk;
  }
  if (name == "addWatch") {
    AddWatchMode mode = AddWatchMode::kPersistentRecursive;
    auto it = cmd.values.find('m');
    if (it != cmd.values.end()) {
      if (it->second == "PERSISTENT")
        mode = AddWatchMode::kPersistent;
      else if (it->second != "PERSISTENT_RECURSIVE")
        return fail(ZkError::kBadArguments, path);
    }
    ZkError e = client_->addWatch(path, mode, printer());
    return e == ZkError::kOk ? kExitOk : fail(e, path);
  }
  if (name == "removewatches") {
    WatcherType type = WatcherType::kAny;
    if (has('c')) type = WatcherType::kChildren;
    if (has('d')) type = WatcherType::kData;
    ZkError e = client_->removeWatches(path, type);
    return e == ZkError::kOk ? kExitOk : fail(e, path);
  }
  std::lock_guard<std::mutex> lock(mu_);
  err_ << "unknown command '" << name << "'\n";
  return kExitUsage;
}

}  // namespace corral::cli
