// The frames of the tcp peer transport: u32 length (little-endian, of kind + body) | u8 kind
// | body. The hello's body: magic, then sender id, sender incarnation, connection number, the
// id the sender meant to reach (u64 each, little-endian) and flags (u32), reserved (u32).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace corral::tcptransport {

enum class FrameKind : uint8_t { kData = 0, kHello = 1, kPing = 2 };

constexpr size_t kFrameHeader = 5;  // length + kind
constexpr std::string_view kHelloMagic = "corral-peer-tcp1";
constexpr size_t kHelloBody = 16 + 40;
constexpr uint32_t kAskReply = 1;  // the sender opened a new connection: answer with a hello

struct Hello {
  uint64_t sender = 0;
  uint64_t incarnation = 0;
  uint64_t connection = 0;
  uint64_t target = 0;
  uint32_t flags = 0;
};

inline void put32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>(v >> (8 * i));
}
inline uint32_t get32(const uint8_t* p) {
  return p[0] | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 24);
}
inline void put64(char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>(v >> (8 * i));
}
inline uint64_t get64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t{p[i]} << (8 * i);
  return v;
}

// Appends one frame to out.
inline void appendFrame(std::string& out, FrameKind kind, const void* body, size_t size) {
  char head[kFrameHeader];
  put32(head, static_cast<uint32_t>(size + 1));
  head[4] = static_cast<char>(kind);
  out.append(head, kFrameHeader);
  if (size > 0) out.append(static_cast<const char*>(body), size);
}

inline void appendHello(std::string& out, const Hello& h) {
  char body[kHelloBody] = {};
  std::memcpy(body, kHelloMagic.data(), kHelloMagic.size());
  char* f = body + kHelloMagic.size();
  put64(f, h.sender);
  put64(f + 8, h.incarnation);
  put64(f + 16, h.connection);
  put64(f + 24, h.target);
  put32(f + 32, h.flags);
  appendFrame(out, FrameKind::kHello, body, sizeof(body));
}

// False when the body is not a hello of this protocol.
inline bool parseHello(const uint8_t* body, size_t size, Hello* out) {
  if (size != kHelloBody || std::memcmp(body, kHelloMagic.data(), kHelloMagic.size()) != 0)
    return false;
  const uint8_t* f = body + kHelloMagic.size();
  out->sender = get64(f);
  out->incarnation = get64(f + 8);
  out->connection = get64(f + 16);
  out->target = get64(f + 24);
  out->flags = get32(f + 32);
  return true;
}

}  // namespace corral::tcptransport
