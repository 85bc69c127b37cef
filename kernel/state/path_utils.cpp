#include "state/path_utils.h"

namespace corral::kernel {

std::string pathError(std::string_view path) {
  if (path.empty()) return "path must not be empty";
  if (path[0] != '/') return "path must start with /";
  if (path.size() == 1) return "";
  if (path.back() == '/') return "path must not end with /";
  size_t seg_start = 1;
  for (size_t i = 1; i <= path.size(); ++i) {
    if (i == path.size() || path[i] == '/') {
      std::string_view seg = path.substr(seg_start, i - seg_start);
      if (seg.empty()) return "empty node name";
      if (seg == "." || seg == "..") return "relative paths not allowed";
      seg_start = i + 1;
      continue;
    }
    unsigned char c = static_cast<unsigned char>(path[i]);
    // ZooKeeper refuses NUL and control characters (\u0001-\u001F, \u007F-\u009F), which in
    // UTF-8 are single bytes below 0x20, 0x7F, and the two-byte forms C2 80..C2 9F.
    if (c == 0) return "null character not allowed";
    if (c < 0x20 || c == 0x7f) return "invalid character";
    if (c == 0xc2 && i + 1 < path.size()) {
      unsigned char d = static_cast<unsigned char>(path[i + 1]);
      if (d >= 0x80 && d <= 0x9f) return "invalid character";
    }
    // U+D800-U+F8FF and U+FFF0-U+FFFF (ED A0.. / EE-EF.. encodings).
    if (c == 0xed && i + 1 < path.size() && static_cast<unsigned char>(path[i + 1]) >= 0xa0)
      return "invalid character";
    if (c == 0xee) return "invalid character";
    if (c == 0xef && i + 2 < path.size()) {
      unsigned char d = static_cast<unsigned char>(path[i + 1]);
      unsigned char e = static_cast<unsigned char>(path[i + 2]);
      if (d < 0xa3 || (d == 0xa3 && e <= 0xbf) || (d == 0xbf && e >= 0xb0))
        return "invalid character";
    }
  }
  return "";
}

std::string_view parentPath(std::string_view path) {
  size_t slash = path.rfind('/');
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string_view baseName(std::string_view path) {
  return path.substr(path.rfind('/') + 1);
}

std::string childPath(std::string_view parent, std::string_view name) {
  std::string out(parent);
  if (out.size() > 1) out.push_back('/');
  out.append(name);
  return out;
}

bool isUnder(std::string_view path, std::string_view root) {
  if (root == "/") return true;
  if (path.size() < root.size() || path.compare(0, root.size(), root) != 0) return false;
  return path.size() == root.size() || path[root.size()] == '/';
}

}  // namespace corral::kernel
