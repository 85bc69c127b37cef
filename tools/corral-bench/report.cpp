#include "report.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>

namespace corral::bench {
namespace {

double selfCpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// Fields 14 and 15 of /proc/PID/stat (utime, stime), counted after the ')' that closes the
// command name, which may itself contain spaces.
double processCpuSeconds(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(f, line);
  size_t close = line.rfind(')');
  if (close == std::string::npos) return 0;
  unsigned long long utime = 0, stime = 0;
  if (std::sscanf(line.c_str() + close + 1,
                  " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
    return 0;
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double wallSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

double CpuMeter::serversCpu() const {
  double sum = 0;
  for (int pid : server_pids_) sum += processCpuSeconds(pid);
  return sum;
}

void CpuMeter::start() {
  bench0_ = selfCpuSeconds();
  server0_ = serversCpu();
  wall0_ = wallSeconds();
}

void CpuMeter::stop(RunResult* r) const {
  r->elapsed_s = wallSeconds() - wall0_;
  r->bench_cpu_s = selfCpuSeconds() - bench0_;
  r->server_cpu_s = serversCpu() - server0_;
}

void writeReport(const Options& o, RunResult* r) {
  std::vector<uint32_t>& all = r->latencies_us;
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) -> double {
    if (all.empty()) return 0;
    size_t i = std::min(all.size() - 1, static_cast<size_t>(p * static_cast<double>(all.size())));
    return all[i] / 1000.0;
  };
  double elapsed = r->elapsed_s > 0 ? r->elapsed_s : 1e-9;
  double ops = static_cast<double>(all.size()) / elapsed;
  const char* driver = driverName(o.driver);
  std::printf(
      "| driver | op | sessions x inflight | ops/s | p50 ms | p99 ms | p999 ms | errors | "
      "bench cpu s | server cpu s |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|\n");
  std::printf("| %s | %s | %dx%d | %.0f | %.3f | %.3f | %.3f | %lld | %.2f | %.2f |\n", driver,
              o.op.c_str(), o.sessions, o.inflight, ops, pct(0.50), pct(0.99), pct(0.999),
              static_cast<long long>(r->errors), r->bench_cpu_s, r->server_cpu_s);
  if (o.json.empty()) return;
  std::ofstream j(o.json);
  j << "{\"driver\":\"" << driver << "\",\"op\":\"" << o.op << "\",\"sessions\":" << o.sessions
    << ",\"inflight\":" << o.inflight << ",\"threads\":" << o.threads << ",\"size\":" << o.size
    << ",\"ops\":" << all.size() << ",\"seconds\":" << r->elapsed_s << ",\"ops_per_sec\":" << ops
    << ",\"p50_ms\":" << pct(0.5) << ",\"p99_ms\":" << pct(0.99) << ",\"p999_ms\":" << pct(0.999)
    << ",\"errors\":" << r->errors << ",\"bench_cpu_s\":" << r->bench_cpu_s
    << ",\"server_cpu_s\":" << r->server_cpu_s << "}\n";
}

}  // namespace corral::bench
