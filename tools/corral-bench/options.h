// corral-bench's command line, shared by both drivers.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace corral::bench {

enum class Driver { CClient, Raw };

struct Options {
  std::string servers = "127.0.0.1:2181";
  Driver driver = Driver::CClient;
  int threads = 1;  // raw driver only: the C client runs its own I/O thread per session
  int sessions = 1;
  int inflight = 1;
  std::string op = "set";
  int size = 100;
  double read_ratio = 0.9;
  int multi_ops = 3;  // --op multi: setData ops per transaction
  double seconds = 10;
  int64_t max_ops = 0;
  std::string json;
  std::vector<int> server_pids;  // --server-pid PID[,PID...]: their CPU time is summed
};

// Fills *options from argv. On a bad or unknown argument prints the usage and returns false.
bool parseOptions(int argc, char** argv, Options* options);

const char* driverName(Driver driver);

// Children each session creates before a delete cell, so that every delete has a target.
int64_t deleteTargetsPerSession(const Options& options);

}  // namespace corral::bench
