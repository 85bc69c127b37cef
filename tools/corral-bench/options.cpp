#include "options.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace corral::bench {
namespace {

const char kUsage[] =
    "usage: corral-bench --servers HOST:PORT[,HOST:PORT...] [--driver c|raw] [--threads T]\n"
    "                    [--sessions N] [--inflight K] [--op OP] [--size BYTES]\n"
    "                    [--read-ratio R] [--seconds S] [--ops N] [--json FILE]\n"
    "                    [--multi-ops K] [--server-pid PID[,PID...]]\n"
    "  OP: create, set, get, exists, delete, mixed (get/set by --read-ratio),\n"
    "      multi (one transaction of K setData on the session's node; default K 3)\n"
    "  --driver c    the official C client, async API (default)\n"
    "  --driver raw  the wire protocol straight over TCP, pipelined, on T epoll threads\n"
    "                (default 1); sessions go round-robin over the servers\n";

bool parseInt64(const char* s, int64_t* out) {
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0') return false;
  *out = v;
  return true;
}

bool parseInt(const char* s, int* out) {
  int64_t v;
  if (!parseInt64(s, &v) || v < INT32_MIN || v > INT32_MAX) return false;
  *out = static_cast<int>(v);
  return true;
}

bool parseDouble(const char* s, double* out) {
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(s, &end);
  if (errno != 0 || end == s || *end != '\0') return false;
  *out = v;
  return true;
}

bool parseDriver(std::string_view s, Driver* out) {
  if (s == "c") {
    *out = Driver::CClient;
  } else if (s == "raw") {
    *out = Driver::Raw;
  } else {
    return false;
  }
  return true;
}

bool parseOne(std::string_view flag, const char* v, Options* o) {
  if (flag == "--servers") {
    o->servers = v;
    return !o->servers.empty();
  }
  if (flag == "--driver") return parseDriver(v, &o->driver);
  if (flag == "--threads") return parseInt(v, &o->threads);
  if (flag == "--sessions") return parseInt(v, &o->sessions);
  if (flag == "--inflight") return parseInt(v, &o->inflight);
  if (flag == "--op") {
    o->op = v;
    return o->op == "create" || o->op == "set" || o->op == "get" || o->op == "exists" ||
           o->op == "delete" || o->op == "mixed" || o->op == "multi";
  }
  if (flag == "--size") return parseInt(v, &o->size);
  if (flag == "--multi-ops") return parseInt(v, &o->multi_ops);
  if (flag == "--read-ratio") return parseDouble(v, &o->read_ratio);
  if (flag == "--seconds") return parseDouble(v, &o->seconds);
  if (flag == "--ops") return parseInt64(v, &o->max_ops);
  if (flag == "--json") {
    o->json = v;
    return true;
  }
  if (flag == "--server-pid") {  // a comma list: an ensemble's servers
    o->server_pids.clear();
    std::string list = v;
    for (size_t at = 0; at <= list.size();) {
      size_t comma = std::min(list.find(',', at), list.size());
      int pid = 0;
      if (!parseInt(list.substr(at, comma - at).c_str(), &pid) || pid <= 0) return false;
      o->server_pids.push_back(pid);
      at = comma + 1;
    }
    return true;
  }
  return false;
}

}  // namespace

bool parseOptions(int argc, char** argv, Options* o) {
  bool ok = true;
  for (int i = 1; ok && i < argc; i += 2) ok = i + 1 < argc && parseOne(argv[i], argv[i + 1], o);
  ok = ok && o->sessions >= 1 && o->inflight >= 1 && o->size >= 0 && o->threads >= 1 &&
       o->threads <= 64 && o->seconds > 0 && o->max_ops >= 0 && o->multi_ops >= 1 &&
       o->multi_ops <= 1000;
  if (!ok) std::fputs(kUsage, stderr);
  return ok;
}

const char* driverName(Driver driver) {
  return driver == Driver::Raw ? "raw" : "c";
}

int64_t deleteTargetsPerSession(const Options& o) {
  return o.max_ops > 0 ? o.max_ops / o.sessions + o.inflight : 20000;
}

}  // namespace corral::bench
