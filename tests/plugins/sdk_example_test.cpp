// A third party's view: install the SDK, build sdk/examples/hello_auth against it alone,
// and load the result with corrald's loader.
#include <gtest/gtest.h>

#include "child_process.h"
#include "plugin_test_support.h"
#include "temp_dir.h"

namespace corral::testing {
namespace {

TEST(SdkExample, BuildsOutOfTreeAgainstTheInstalledSdkAndLoads) {
  std::string cmake = envDir("CORRAL_CMAKE");
  std::string build = envDir("CORRAL_BUILD_DIR");
  std::string source = envDir("CORRAL_SOURCE_DIR");
  ASSERT_FALSE(cmake.empty() || build.empty() || source.empty());
  TempDir dir("corral-sdk-example");
  std::string prefix = dir.path() + "/sdk";
  std::string out = dir.path() + "/build";

  CommandResult r =
      runCommand({cmake, "--install", build, "--component", "sdk", "--prefix", prefix}, "",
                 std::chrono::milliseconds(60000));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = runCommand(
      {cmake, "-S", source + "/sdk/examples/hello_auth", "-B", out, "-DCMAKE_PREFIX_PATH=" + prefix,
       "-DCMAKE_CXX_COMPILER=" + envDir("CORRAL_CXX"), "-DCMAKE_BUILD_TYPE=Release"},
      "", std::chrono::milliseconds(120000));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = runCommand({cmake, "--build", out}, "", std::chrono::milliseconds(180000));
  ASSERT_EQ(r.exit_code, 0) << r.output;

  kernel::PluginRegistry registry(out, testHost());
  std::string error;
  AuthProvider* hello = registry.createAuth("hello", "", &error);
  ASSERT_NE(hello, nullptr) << error;
  EXPECT_STREQ(hello->scheme(), "hello");
  char id[64];
  size_t len = 0;
  char err[128] = {0};
  ASSERT_EQ(hello->authenticate(ByteView("alice", 5), TextBuf{id, sizeof(id), &len},
                                ErrorBuf{err, sizeof(err)}),
            AuthCode::kOk);
  EXPECT_EQ(std::string(id, len), "alice");
  EXPECT_EQ(registry.createAuth("hello", "x = 1", &error), nullptr);
  EXPECT_NE(error.find("takes no configuration"), std::string::npos) << error;
}

}  // namespace
}  // namespace corral::testing
