// ZooKeeper's znode path rules (PathUtils.validatePath) and path arithmetic.
#pragma once

#include <string>
#include <string_view>

namespace corral::kernel {

// Empty when valid; otherwise why not (ZooKeeper answers BADARGUMENTS).
std::string pathError(std::string_view path);
// "/a/b" -> "/a"; "/a" -> "/".  Path must be valid and not "/".
std::string_view parentPath(std::string_view path);
// "/a/b" -> "b".
std::string_view baseName(std::string_view path);
// child of parent: "/" + "a" -> "/a"; "/x" + "a" -> "/x/a".
std::string childPath(std::string_view parent, std::string_view name);
// Whether `path` is `root` or below it (as a path prefix, not a string prefix).
bool isUnder(std::string_view path, std::string_view root);

}  // namespace corral::kernel
