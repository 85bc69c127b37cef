// What a timed run measured, and how it is printed: one markdown table row and, with
// --json, one JSON object (bench/compare.py reads the JSON).
#pragma once

#include <cstdint>
#include <vector>

#include "options.h"

namespace corral::bench {

struct RunResult {
  std::vector<uint32_t> latencies_us;  // one per completed request, any order
  int64_t errors = 0;
  double elapsed_s = 0;
  double bench_cpu_s = 0;
  double server_cpu_s = 0;
};

// CPU time (user + system) of this process and of the servers under test (summed), over the
// timed part only, so that setup and cleanup do not count.
class CpuMeter {
 public:
  explicit CpuMeter(std::vector<int> server_pids) : server_pids_(std::move(server_pids)) {}
  void start();
  // Sets elapsed_s, bench_cpu_s and server_cpu_s of *result.
  void stop(RunResult* result) const;

 private:
  std::vector<int> server_pids_;
  double serversCpu() const;
  double bench0_ = 0;
  double server0_ = 0;
  double wall0_ = 0;
};

// Prints the table to stdout and writes the JSON file if asked; sorts the latencies.
void writeReport(const Options& options, RunResult* result);

}  // namespace corral::bench
