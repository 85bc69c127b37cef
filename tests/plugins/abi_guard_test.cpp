// The plugin ABI header may only change together with its version: this test remembers the
// header's hash for the version it was recorded at.
#include <corral/plugin_abi.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace corral::testing {
namespace {

// Recorded for ABI 1.2. When plugin_abi.h changes, bump CORRAL_PLUGIN_ABI_MAJOR (breaking)
// or _MINOR (fields appended), then record the new hash here.
constexpr uint32_t kRecordedMajor = 1;
constexpr uint32_t kRecordedMinor = 2;
constexpr uint64_t kRecordedHash = 0x48b14448e2df8e6fULL;

uint64_t fnv1a(const std::string& bytes) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

TEST(AbiGuard, HeaderChangesComeWithAVersionBump) {
  const char* src = std::getenv("CORRAL_SOURCE_DIR");
  ASSERT_NE(src, nullptr);
  std::ifstream in(std::string(src) + "/sdk/include/corral/plugin_abi.h", std::ios::binary);
  ASSERT_TRUE(in.good());
  std::stringstream ss;
  ss << in.rdbuf();
  uint64_t hash = fnv1a(ss.str());
  if (CORRAL_PLUGIN_ABI_MAJOR == kRecordedMajor && CORRAL_PLUGIN_ABI_MINOR == kRecordedMinor) {
    EXPECT_EQ(hash, kRecordedHash)
        << "plugin_abi.h changed: bump CORRAL_PLUGIN_ABI_MAJOR/MINOR and update the recorded "
           "hash to 0x"
        << std::hex << hash;
  } else {
    ADD_FAILURE() << "ABI version changed: record hash 0x" << std::hex << hash << " for "
                  << CORRAL_PLUGIN_ABI_MAJOR << "." << CORRAL_PLUGIN_ABI_MINOR;
  }
}

}  // namespace
}  // namespace corral::testing
