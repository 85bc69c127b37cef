// The raw driver's timed part: each session sends --op on its own node, keeping --inflight
// requests outstanding, from request frames encoded once per session, so a request costs a
// memcpy (and, for delete, ten digits) rather than an encoding.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "options.h"
#include "raw_loop.h"

namespace corral::bench {

class BenchPlan : public Plan {
 public:
  // paths[i] is session i's node; `issued` counts requests across loops for --ops.
  BenchPlan(const Options& options, const std::vector<std::string>& paths,
            std::atomic<int64_t>* issued);

  bool next(int index, std::string* out) override;
  void reply(int index, int32_t err, JuteReader body) override;

  // Error replies over all sessions; read after the loops have stopped.
  int64_t errors() const;

 private:
  // Aligned so that sessions run by different threads do not share a cache line.
  struct alignas(64) Session {
    std::string frame;       // the op's request; for mixed, the set
    std::string read_frame;  // mixed: the get
    size_t digits_at = 0;    // delete: offset of the child's 10-digit sequence number
    int64_t next_child = 0;  // delete: children were created as c-0000000000, c-0000000001...
    uint64_t rng = 0;        // mixed: xorshift state
    int64_t errors = 0;
  };

  std::vector<Session> sessions_;
  bool mixed_;
  bool deletes_;
  int multi_ops_;  // --op multi: the ops each reply must report as done; 0 otherwise
  // With --ops, each session deletes only its own share of the children created for it,
  // so that a session served faster than the others does not run out and fail the cell.
  int64_t delete_limit_;
  double read_ratio_;
  int64_t max_ops_;
  std::atomic<int64_t>* issued_;
};

}  // namespace corral::bench
