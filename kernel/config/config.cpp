#include "config/config.h"

#include <toml++/toml.h>

#include <filesystem>
#include <set>
#include <sstream>

namespace corral::kernel {
namespace {

namespace fs = std::filesystem;

// Collects the first error, located at a node of the document (or at a --set).
class Checker {
 public:
  explicit Checker(std::string file) : file_(std::move(file)) {}

  bool failed() const { return !error_.empty(); }
  const std::string& error() const { return error_; }

  void fail(const toml::node* at, const std::string& key, const std::string& msg) {
    if (failed()) return;
    std::string where = file_;
    if (at != nullptr && at->source().begin.line > 0)
      where += ":" + std::to_string(at->source().begin.line);
    else
      where += " (--set)";
    error_ = where + ": " + key + ": " + msg;
  }

  void onlyKeys(const toml::table& t, const std::string& prefix,
                std::initializer_list<std::string_view> keys, bool allow_subtables) {
    for (const auto& [k, v] : t) {
      std::string name(k.str());
      bool known = false;
      for (std::string_view key : keys) known |= name == key;
      if (known || (allow_subtables && v.is_table())) continue;
      fail(&v, prefix + name, "unknown key");
      return;
    }
  }

  int64_t integer(const toml::table& t, const std::string& table, const char* key, int64_t fallback,
                  int64_t lo, int64_t hi) {
    const toml::node* n = t.get(key);
    if (n == nullptr) return fallback;
    std::string name = table + "." + key;
    if (!n->is_integer()) {
      fail(n, name, "expected an integer, got " + describe(*n));
      return fallback;
    }
    int64_t v = n->as_integer()->get();
    if (v < lo || v > hi) {
      fail(n, name,
           "must be between " + std::to_string(lo) + " and " + std::to_string(hi) + ", got " +
               std::to_string(v));
      return fallback;
    }
    return v;
  }

  std::string string(const toml::table& t, const std::string& table, const char* key,
                     std::string fallback) {
    const toml::node* n = t.get(key);
    if (n == nullptr) return fallback;
    if (!n->is_string()) {
      fail(n, table + "." + key, "expected a string, got " + describe(*n));
      return fallback;
    }
    return n->as_string()->get();
  }

  std::vector<std::string> strings(const toml::table& t, const std::string& table, const char* key,
                                   std::vector<std::string> fallback) {
    const toml::node* n = t.get(key);
    if (n == nullptr) return fallback;
    std::string name = table + "." + key;
    if (!n->is_array()) {
      fail(n, name, "expected an array of strings, got " + describe(*n));
      return fallback;
    }
    std::vector<std::string> out;
    for (const toml::node& e : *n->as_array()) {
      if (!e.is_string()) {
        fail(&e, name, "expected an array of strings, found " + describe(e));
        return fallback;
      }
      out.push_back(e.as_string()->get());
    }
    return out;
  }

  static std::string describe(const toml::node& n) {
    std::ostringstream os;
    switch (n.type()) {
      case toml::node_type::string:
        return "\"" + n.as_string()->get() + "\"";
      case toml::node_type::table:
        return "a table";
      case toml::node_type::array:
        return "an array";
      default:
        if (n.is_value()) {
          n.visit([&](const auto& v) {
            if constexpr (toml::is_value<decltype(v)>) os << v;
          });
          return os.str();
        }
        return "a value";
    }
  }

 private:
  std::string file_;
  std::string error_;
};

std::string tomlText(const toml::table* t) {
  if (t == nullptr) return "";
  std::ostringstream os;
  os << toml::toml_formatter(*t);
  return os.str();
}

// --set a.b.c=value: the value parsed as TOML, or taken as a string if it is not TOML.
bool applySet(toml::table& root, const std::string& set, std::string* error) {
  size_t eq = set.find('=');
  if (eq == std::string::npos || eq == 0) {
    *error = "--set " + set + ": expected TABLE.KEY=VALUE";
    return false;
  }
  std::string key = set.substr(0, eq);
  std::string value = set.substr(eq + 1);
  std::vector<std::string> parts;
  std::stringstream ss(key);
  for (std::string part; std::getline(ss, part, '.');) {
    if (part.empty()) {
      *error = "--set " + set + ": empty name in key '" + key + "'";
      return false;
    }
    parts.push_back(part);
  }
  toml::table* t = &root;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    toml::node* n = t->get(parts[i]);
    if (n == nullptr) {
      t->insert(parts[i], toml::table{});
      n = t->get(parts[i]);
    }
    if (!n->is_table()) {
      *error = "--set " + set + ": '" + parts[i] + "' is not a table";
      return false;
    }
    t = n->as_table();
  }
  toml::table parsed;
  try {
    parsed = toml::parse("v = " + value);
  } catch (const toml::parse_error&) {
    parsed.insert("v", value);
  }
  // A value from the command line has no source line; the checker says "(--set)".
  toml::node* v = parsed.get("v");
  if (v->is_table()) {
    t->insert_or_assign(parts.back(), *v->as_table());
  } else if (v->is_array()) {
    t->insert_or_assign(parts.back(), *v->as_array());
  } else {
    v->visit([&](auto& val) {
      if constexpr (toml::is_value<decltype(val)>) t->insert_or_assign(parts.back(), val.get());
    });
  }
  return true;
}

bool parseMembers(Checker& c, const toml::table& ensemble, const char* key,
                  std::vector<EnsembleMember>* out) {
  const toml::node* n = ensemble.get(key);
  std::vector<std::string> entries = c.strings(ensemble, "ensemble", key, {});
  for (const std::string& e : entries) {
    size_t eq = e.find('=');
    size_t colon = e.rfind(':');
    EnsembleMember m;
    bool ok = eq != std::string::npos && eq > 0 && colon != std::string::npos && colon > eq + 1 &&
              colon + 1 < e.size();
    if (ok) {
      try {
        size_t used = 0;
        m.id = std::stoll(e.substr(0, eq), &used);
        ok = used == eq && m.id > 0;
        int port = std::stoi(e.substr(colon + 1), &used);
        ok = ok && used == e.size() - colon - 1 && port > 0 && port < 65536;
      } catch (...) {
        ok = false;
      }
    }
    if (!ok) {
      c.fail(n, std::string("ensemble.") + key,
             "entry \"" + e + "\" is not of the form \"ID=host:port\"");
      return false;
    }
    m.address = e.substr(eq + 1);
    out->push_back(m);
  }
  return !c.failed();
}

}  // namespace

bool loadConfig(const std::string& path, const std::vector<std::string>& sets,
                const std::string& exe_dir, ServerConfig* out, std::string* error) {
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    const auto& src = e.source();
    *error = path + ":" + std::to_string(src.begin.line) + ":" + std::to_string(src.begin.column) +
             ": " + std::string(e.description());
    return false;
  } catch (const std::exception& e) {
    *error = path + ": " + e.what();
    return false;
  }
  for (const std::string& s : sets)
    if (!applySet(root, s, error)) return false;

  Checker c(path);
  ServerConfig cfg;
  cfg.config_path = path;
  c.onlyKeys(root, "", {"server", "ensemble", "storage", "client", "peer", "auth"}, false);
  for (const char* table : {"server", "ensemble", "storage", "client", "peer", "auth"}) {
    const toml::node* n = root.get(table);
    if (n != nullptr && !n->is_table()) c.fail(n, table, "expected a table");
  }
  if (c.failed()) {
    *error = c.error();
    return false;
  }
  static const toml::table kEmpty;
  auto table = [&](const char* name) -> const toml::table& {
    const toml::node* n = root.get(name);
    return n != nullptr ? *n->as_table() : kEmpty;
  };

  const toml::table& server = table("server");
  c.onlyKeys(server, "server.",
             {"id", "data_dir", "tick_ms", "init_limit", "sync_limit", "min_session_timeout_ms",
              "max_session_timeout_ms", "max_request_bytes", "plugin_dir", "snapshot_every"},
             false);
  cfg.id = c.integer(server, "server", "id", 1, 1, 255);
  cfg.data_dir = c.string(server, "server", "data_dir", "data");
  cfg.tick_ms = c.integer(server, "server", "tick_ms", 200, 1, 60000);
  cfg.init_limit = c.integer(server, "server", "init_limit", 10, 1, 1000);
  cfg.sync_limit = c.integer(server, "server", "sync_limit", 5, 1, 1000);
  cfg.min_session_timeout_ms =
      c.integer(server, "server", "min_session_timeout_ms", 2 * cfg.tick_ms, 1, INT32_MAX);
  cfg.max_session_timeout_ms =
      c.integer(server, "server", "max_session_timeout_ms", 20 * cfg.tick_ms, 1, INT32_MAX);
  cfg.max_request_bytes =
      c.integer(server, "server", "max_request_bytes", 1048575, 1024, 1LL << 30);
  cfg.plugin_dir = c.string(server, "server", "plugin_dir", "");
  cfg.snapshot_every = c.integer(server, "server", "snapshot_every", 100000, 1, 1LL << 40);
  if (!c.failed() && cfg.min_session_timeout_ms > cfg.max_session_timeout_ms)
    c.fail(server.get("min_session_timeout_ms"), "server.min_session_timeout_ms",
           "must not exceed server.max_session_timeout_ms (" +
               std::to_string(cfg.max_session_timeout_ms) + ")");
  if (!c.failed() && cfg.data_dir.empty())
    c.fail(server.get("data_dir"), "server.data_dir", "must not be empty");

  const toml::table& ensemble = table("ensemble");
  c.onlyKeys(ensemble, "ensemble.", {"servers", "observers"}, false);
  if (!c.failed()) parseMembers(c, ensemble, "servers", &cfg.voters);
  if (!c.failed()) parseMembers(c, ensemble, "observers", &cfg.observers);
  if (!c.failed() && !cfg.observers.empty() && cfg.voters.empty())
    c.fail(ensemble.get("observers"), "ensemble.observers", "observers need ensemble.servers");
  if (!c.failed() && !cfg.voters.empty()) {
    std::set<int64_t> ids;
    std::set<std::string> addresses;
    bool self_listed = false;
    for (const auto* list : {&cfg.voters, &cfg.observers}) {
      const char* key = list == &cfg.voters ? "servers" : "observers";
      for (const EnsembleMember& m : *list) {
        if (!ids.insert(m.id).second || !addresses.insert(m.address).second) {
          c.fail(ensemble.get(key), std::string("ensemble.") + key,
                 "server " + std::to_string(m.id) + " (" + m.address +
                     "): its id or address is listed twice");
          break;
        }
        self_listed = self_listed || m.id == cfg.id;
      }
    }
    if (!c.failed() && !self_listed)
      c.fail(server.get("id"), "server.id",
             "server " + std::to_string(cfg.id) +
                 " is not among ensemble.servers or ensemble.observers");
  }

  const toml::table& storage = table("storage");
  c.onlyKeys(storage, "storage.", {"plugin"}, true);
  cfg.storage.name = c.string(storage, "storage", "plugin", "memory");
  if (!c.failed()) {
    const toml::node* sub = storage.get(cfg.storage.name);
    cfg.storage.config_toml = tomlText(sub != nullptr ? sub->as_table() : nullptr);
  }

  const toml::table& client = table("client");
  for (const auto& [k, v] : client) {
    if (!v.is_table()) {
      c.fail(&v, "client." + std::string(k.str()),
             "expected a table [client." + std::string(k.str()) + "] for that transport");
      break;
    }
    cfg.client_transports.push_back({std::string(k.str()), tomlText(v.as_table())});
  }
  if (!c.failed() && cfg.client_transports.empty())
    c.fail(nullptr, "client", "no client transport enabled: add e.g. [client.zmq]");

  const toml::table& peer = table("peer");
  c.onlyKeys(peer, "peer.", {"plugin"}, true);
  cfg.peer.name = c.string(peer, "peer", "plugin", "tcp");
  if (!c.failed()) {
    const toml::node* sub = peer.get(cfg.peer.name);
    cfg.peer.config_toml = tomlText(sub != nullptr ? sub->as_table() : nullptr);
  }

  const toml::table& auth = table("auth");
  c.onlyKeys(auth, "auth.", {"providers", "super_digest"}, true);
  std::vector<std::string> providers =
      c.strings(auth, "auth", "providers", {"world", "digest", "ip"});
  std::set<std::string> seen;
  for (const std::string& p : providers) {
    if (!seen.insert(p).second) {
      c.fail(auth.get("providers"), "auth.providers", "provider \"" + p + "\" listed twice");
      break;
    }
    const toml::node* sub = auth.get(p);
    cfg.auth_providers.push_back({p, tomlText(sub != nullptr ? sub->as_table() : nullptr)});
  }
  cfg.super_digest = c.string(auth, "auth", "super_digest", "");
  if (!c.failed() && !cfg.super_digest.empty() && cfg.super_digest.find(':') == std::string::npos)
    c.fail(auth.get("super_digest"), "auth.super_digest",
           "expected \"user:<base64 sha1>\" as ZooKeeper's superDigest");

  if (c.failed()) {
    *error = c.error();
    return false;
  }

  fs::path base = fs::absolute(fs::path(path)).parent_path();
  auto resolve = [&](const std::string& p) {
    fs::path fp(p);
    return (fp.is_absolute() ? fp : base / fp).lexically_normal().string();
  };
  cfg.data_dir = resolve(cfg.data_dir);
  cfg.plugin_dir =
      cfg.plugin_dir.empty()
          ? (fs::path(exe_dir) / ".." / "lib" / "corral" / "plugins").lexically_normal().string()
          : resolve(cfg.plugin_dir);
  *out = std::move(cfg);
  return true;
}

}  // namespace corral::kernel
