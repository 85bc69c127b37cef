#include "free_port.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <ctime>
#include <mutex>
#include <random>
#include <set>
#include <stdexcept>

namespace corral::testing {

// A port nobody listens on right now, below the kernel's ephemeral range (32768 and up
// here): a port the kernel hands out for port 0 is also what the next outgoing connection of
// any process may take, and one test's clients then stole a server's port before it bound
// it. Random (per process) and unique within this process, checked by binding it.
int freeLoopbackPort() {
  static std::mutex mu;
  static std::set<int> handed_out;
  static std::mt19937 rng(static_cast<uint32_t>(getpid()) * 2654435761u ^
                          static_cast<uint32_t>(time(nullptr)));
  constexpr int kLow = 20000, kHigh = 32000;
  std::lock_guard<std::mutex> lock(mu);
  for (int attempt = 0; attempt < 1000; ++attempt) {
    int port = std::uniform_int_distribution<int>(kLow, kHigh)(rng);
    if (handed_out.count(port) != 0) continue;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) break;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    bool free = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
    close(fd);
    if (free) {
      handed_out.insert(port);
      return port;
    }
  }
  throw std::runtime_error("no free port");
}

}  // namespace corral::testing
