// corrald: the Corral server.
//   corrald --config FILE [--set TABLE.KEY=VALUE]...
//   corrald --check-config FILE [--set ...]
#include <malloc.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "config/config.h"
#include "server_main.h"

namespace {

const char kUsage[] =
    "usage: corrald --config FILE [--set TABLE.KEY=VALUE]...\n"
    "       corrald --check-config FILE [--set TABLE.KEY=VALUE]...\n"
    "       corrald --help | --version\n"
    "Runs a Corral server. --set overrides any config key by its dotted path,\n"
    "e.g. --set server.data_dir=/tmp/corral.\n";

std::string exeDir(const char* argv0) {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n > 0) {
    buf[n] = '\0';
    return std::filesystem::path(buf).parent_path().string();
  }
  return std::filesystem::absolute(argv0).parent_path().string();
}

}  // namespace

int main(int argc, char** argv) {
  // A fixed threshold: buffers of 1 MB and more (a snapshot read back for storage, large
  // frames) get their own mapping and go back to the system when freed. glibc's default
  // raises the threshold after the first such free, so later ones landed in the heap under
  // long-lived znodes and stayed resident: 200k znodes held 143 MB instead of 83 MB.
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  std::string config_path;
  bool check_only = false;
  std::vector<std::string> sets;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* flag) -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "corrald: %s needs a value\n%s", flag, kUsage);
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "--version") {
      std::puts("corrald 0.1.0");
      return 0;
    } else if (a == "--config") {
      config_path = value("--config");
    } else if (a == "--check-config") {
      config_path = value("--check-config");
      check_only = true;
    } else if (a == "--set") {
      sets.push_back(value("--set"));
    } else if (a.rfind("--set=", 0) == 0) {
      sets.push_back(a.substr(6));
    } else {
      std::fprintf(stderr, "corrald: unknown argument '%s'\n%s", a.c_str(), kUsage);
      return 2;
    }
  }
  if (config_path.empty()) {
    std::fprintf(stderr, "corrald: --config FILE is required\n%s", kUsage);
    return 2;
  }
  corral::kernel::ServerConfig config;
  std::string error;
  if (!corral::kernel::loadConfig(config_path, sets, exeDir(argv[0]), &config, &error)) {
    std::fprintf(stderr, "corrald: %s\n", error.c_str());
    return 2;
  }
  if (check_only) {
    std::printf("config ok: %s\n", config_path.c_str());
    return 0;
  }
  return corral::tools::runServer(config);
}
