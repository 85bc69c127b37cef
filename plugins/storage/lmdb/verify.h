// Offline integrity check of an LMDB environment written by this plugin: file size against
// LMDB's own page count, every value's checksum, and no gaps in the log's zxids.
//
// It runs in a forked child: LMDB trusts its pages, and a corrupted page can crash the
// reader (SIGSEGV, or SIGBUS on a truncated file). A crash in the child is a clear "corrupt"
// verdict for the parent instead of a crashed server.
#pragma once

#include <string>

namespace corral::lmdb {

// True when the environment at `path` (a folder holding data.mdb) is sound, or does not exist
// yet. Otherwise false, with one line naming the file and, where known, the zxid.
bool verifyEnvironment(const std::string& path, std::string* error);

// The same checks in this process (what the child runs); "" when sound.
std::string verifyInProcess(const std::string& path);

}  // namespace corral::lmdb
