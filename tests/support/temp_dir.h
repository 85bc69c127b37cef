// TempDir: a fresh directory under $TMPDIR (or /tmp), removed with its contents on
// destruction unless CORRAL_KEEP_TEST_DIRS is set (handy when a test fails).
#pragma once

#include <string>

namespace corral::testing {

class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "corral-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // Writes `content` to path()/name and returns the full path.
  std::string writeFile(const std::string& name, const std::string& content) const;

 private:
  std::string path_;
};

}  // namespace corral::testing
