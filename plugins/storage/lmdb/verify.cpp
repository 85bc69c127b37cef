#include "verify.h"

#include <lmdb.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "crc32.h"

namespace corral::lmdb {
namespace {

uint64_t keyZxid(const MDB_val& k) {
  uint64_t out = 0;
  const auto* p = static_cast<const uint8_t*>(k.mv_data);
  for (size_t i = 0; i < k.mv_size && i < 8; ++i) out = (out << 8) | p[i];
  return out;
}

bool checksumOk(const MDB_val& k, const MDB_val& v) {
  if (v.mv_size < 4) return false;
  const auto* p = static_cast<const uint8_t*>(v.mv_data);
  uint32_t stored = p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24);
  return crc32(p + 4, v.mv_size - 4, crc32(k.mv_data, k.mv_size)) == stored;
}

// The zxid that may follow `prev` in a log: the next counter, or the first of a new epoch.
bool follows(uint64_t prev, uint64_t next) {
  return next == prev + 1 || ((next >> 32) > (prev >> 32) && (next & 0xffffffffu) == 1);
}

std::string walk(MDB_txn* txn, const char* name, bool contiguous, const std::string& file) {
  MDB_dbi dbi;
  int rc = mdb_dbi_open(txn, name, 0, &dbi);
  if (rc == MDB_NOTFOUND) return "";
  if (rc != 0) return file + ": cannot open the " + name + " table: " + mdb_strerror(rc);
  MDB_cursor* cur = nullptr;
  rc = mdb_cursor_open(txn, dbi, &cur);
  if (rc != 0) return file + ": " + mdb_strerror(rc);
  MDB_val k, v;
  uint64_t prev = 0;
  bool first = true;
  std::string problem;
  for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    uint64_t zxid = keyZxid(k);
    if (k.mv_size != 8 && std::strcmp(name, "meta") != 0) {
      problem = file + ": " + name + " table holds a malformed key";
      break;
    }
    if (!checksumOk(k, v)) {
      problem =
          file + ": " + name + " record for zxid " + std::to_string(zxid) + " fails its checksum";
      if (std::strcmp(name, "meta") == 0) problem = file + ": epochs fail their checksum";
      break;
    }
    if (contiguous && !first && !follows(prev, zxid)) {
      problem = file + ": log gap: zxid " + std::to_string(zxid) + " follows zxid " +
                std::to_string(prev);
      break;
    }
    first = false;
    prev = zxid;
  }
  if (problem.empty() && rc != MDB_NOTFOUND)
    problem = file + ": " + name + " table unreadable: " + mdb_strerror(rc);
  mdb_cursor_close(cur);
  return problem;
}

// The free list (LMDB's table 0): every page it offers must exist. A damaged free list would
// hand the writer pages that do not belong to it.
std::string walkFreeList(MDB_txn* txn, size_t last_pgno, const std::string& file) {
  MDB_cursor* cur = nullptr;
  int rc = mdb_cursor_open(txn, 0, &cur);
  if (rc != 0) return file + ": free list unreadable: " + mdb_strerror(rc);
  MDB_val k, v;
  std::string problem;
  for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    size_t n = v.mv_size / sizeof(size_t);
    std::vector<size_t> ids(n);
    if (n > 0) std::memcpy(ids.data(), v.mv_data, n * sizeof(size_t));
    if (n == 0 || ids[0] + 1 != n) {
      problem = file + ": free list entry is malformed";
      break;
    }
    for (size_t i = 1; i < n && problem.empty(); ++i) {
      if (ids[i] < 2 || ids[i] > last_pgno)
        problem = file + ": free list names page " + std::to_string(ids[i]) + ", outside the store";
    }
    if (!problem.empty()) break;
  }
  if (problem.empty() && rc != MDB_NOTFOUND)
    problem = file + ": free list unreadable: " + mdb_strerror(rc);
  mdb_cursor_close(cur);
  return problem;
}

// A write transaction, aborted: it takes pages the way the server's first commit will, so a
// store that would fail (or hang) on write fails here, in the verifier, instead.
std::string probeWrite(const std::string& path, const std::string& file) {
  MDB_env* env = nullptr;
  int rc = mdb_env_create(&env);
  if (rc == 0) rc = mdb_env_set_maxdbs(env, 4);
  if (rc == 0) rc = mdb_env_open(env, path.c_str(), MDB_NOTLS | MDB_NOLOCK | MDB_NOSYNC, 0644);
  MDB_txn* txn = nullptr;
  MDB_dbi meta = 0;
  if (rc == 0) rc = mdb_txn_begin(env, nullptr, 0, &txn);
  if (rc == 0) rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &meta);
  if (rc == 0) {
    std::string key = "verify-probe", value(64 * 1024, 'p');
    MDB_val k{key.size(), key.data()}, v{value.size(), value.data()};
    rc = mdb_put(txn, meta, &k, &v, 0);
  }
  if (txn != nullptr) mdb_txn_abort(txn);
  if (env != nullptr) mdb_env_close(env);
  if (rc != 0 && rc != MDB_MAP_FULL) return file + ": a trial write fails: " + mdb_strerror(rc);
  return "";
}

}  // namespace

// LMDB keeps two meta pages and opens the one with the higher txnid; they carry no checksum.
// A damaged newest meta page could make LMDB open the previous commit — silently losing the
// last one. Commits alternate between the pages, so sound pages hold txnids N and N-1 (or
// both 0 in a new store) and both have LMDB's magic: anything else is refused.
std::string checkMetaPages(const std::string& file) {
  constexpr uint32_t kMagic = 0xBEEFC0DE;
  constexpr size_t kMetaOffset = 16;                    // after the page header
  constexpr size_t kPageSizeOffset = kMetaOffset + 24;  // mm_dbs[FREE_DBI].md_pad
  constexpr size_t kTxnidOffset = kMetaOffset + 24 + 96 + 8;
  FILE* f = std::fopen(file.c_str(), "rb");
  if (f == nullptr) return file + ": cannot read: " + std::strerror(errno);
  unsigned char page0[kTxnidOffset + 8];
  size_t got = std::fread(page0, 1, sizeof(page0), f);
  uint32_t magic = 0, page_size = 0;
  std::memcpy(&magic, page0 + kMetaOffset, 4);
  std::memcpy(&page_size, page0 + kPageSizeOffset, 4);
  if (got != sizeof(page0) || magic != kMagic || page_size < 512 || page_size > 65536 ||
      (page_size & (page_size - 1)) != 0) {
    std::fclose(f);
    return file + ": first meta page is damaged";
  }
  unsigned char page1[sizeof(page0)];
  bool ok = std::fseek(f, page_size, SEEK_SET) == 0 &&
            std::fread(page1, 1, sizeof(page1), f) == sizeof(page1);
  std::fclose(f);
  std::memcpy(&magic, page1 + kMetaOffset, 4);
  if (!ok || magic != kMagic) return file + ": second meta page is damaged";
  uint64_t t0 = 0, t1 = 0;
  std::memcpy(&t0, page0 + kTxnidOffset, 8);
  std::memcpy(&t1, page1 + kTxnidOffset, 8);
  bool consistent = (t0 == 0 && t1 == 0) || t0 == t1 + 1 || t1 == t0 + 1;
  if (!consistent)
    return file + ": meta pages disagree (txn " + std::to_string(t0) + " and " +
           std::to_string(t1) + "): the newest commit cannot be trusted";
  return "";
}

std::string verifyInProcess(const std::string& path) {
  const std::string file = path + "/data.mdb";
  struct stat st;
  if (::stat(file.c_str(), &st) != 0) return "";  // a new store
  if (std::string meta = checkMetaPages(file); !meta.empty()) return meta;
  MDB_env* env = nullptr;
  int rc = mdb_env_create(&env);
  if (rc == 0) rc = mdb_env_set_maxdbs(env, 4);
  if (rc == 0) rc = mdb_env_open(env, path.c_str(), MDB_RDONLY | MDB_NOTLS | MDB_NOLOCK, 0644);
  if (rc != 0) {
    if (env != nullptr) mdb_env_close(env);
    return file + ": not a valid store: " + mdb_strerror(rc);
  }
  MDB_envinfo info;
  MDB_stat stat;
  mdb_env_info(env, &info);
  mdb_env_stat(env, &stat);
  uint64_t needed = (static_cast<uint64_t>(info.me_last_pgno) + 1) * stat.ms_psize;
  if (static_cast<uint64_t>(st.st_size) < needed) {
    mdb_env_close(env);
    return file + ": truncated: " + std::to_string(st.st_size) + " bytes, the store needs " +
           std::to_string(needed);
  }
  MDB_txn* txn = nullptr;
  rc = mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn);
  std::string problem;
  if (rc != 0) {
    problem = file + ": " + mdb_strerror(rc);
  } else {
    problem = walk(txn, "log", true, file);
    if (problem.empty()) problem = walk(txn, "snap", false, file);
    if (problem.empty()) problem = walk(txn, "meta", false, file);
    if (problem.empty()) problem = walkFreeList(txn, info.me_last_pgno, file);
    mdb_txn_abort(txn);
  }
  mdb_env_close(env);
  if (problem.empty()) problem = probeWrite(path, file);
  return problem;
}

bool verifyEnvironment(const std::string& path, std::string* error) {
  int fds[2];
  if (pipe(fds) != 0) {
    *error = verifyInProcess(path);
    return error->empty();
  }
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    *error = verifyInProcess(path);
    return error->empty();
  }
  if (pid == 0) {
    close(fds[0]);
    std::string problem = verifyInProcess(path);
    ssize_t ignored = write(fds[1], problem.data(), problem.size());
    (void)ignored;
    _exit(problem.empty() ? 0 : 1);
  }
  close(fds[1]);
  std::string message;
  char buf[512];
  for (ssize_t n; (n = read(fds[0], buf, sizeof(buf))) > 0;) message.append(buf, n);
  close(fds[0]);
  // A damaged store can also make LMDB loop: the verifier gets a generous deadline.
  int status = 0;
  bool finished = false;
  for (int waited_ms = 0; waited_ms < 120000; waited_ms += 10) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid || (r < 0 && errno != EINTR)) {
      finished = r == pid;
      break;
    }
    usleep(10000);
  }
  if (!finished) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    *error = path + "/data.mdb: corrupt: verifying it did not finish in 120 s";
    return false;
  }
  if (WIFSIGNALED(status)) {
    *error = path + "/data.mdb: corrupt: reading it crashed the verifier (" +
             strsignal(WTERMSIG(status)) + ")";
    return false;
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return true;
  *error = message.empty() ? path + "/data.mdb: verification failed" : message;
  return false;
}

}  // namespace corral::lmdb
