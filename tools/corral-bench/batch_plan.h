// Setup and cleanup for the raw driver: a fixed number of requests per session, pipelined
// like the timed part, so that creating (or deleting) thousands of children per session for
// a delete cell takes seconds rather than minutes.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "raw_loop.h"

namespace corral::bench {

class BatchPlan : public Plan {
 public:
  // Appends request k of session `index` (a whole frame, see zk_protocol.h).
  using Encode = std::function<void(int index, int64_t k, std::string* out)>;
  // Reads a successful reply of session `index`.
  using OnReply = std::function<void(int index, JuteReader body)>;

  // counts[i] requests for session i. An error reply outside `tolerated` fails the plan.
  BatchPlan(std::vector<int64_t> counts, Encode encode, std::vector<int32_t> tolerated = {},
            OnReply on_reply = {});

  bool next(int index, std::string* out) override;
  void reply(int index, int32_t err, JuteReader body) override;

  // After the loops ran: true when every request was answered without an intolerable
  // error; otherwise *err says what went wrong first.
  bool succeeded(std::string* err) const;

 private:
  std::vector<int64_t> counts_;
  std::vector<int64_t> sent_;
  std::vector<int64_t> answered_;
  Encode encode_;
  std::vector<int32_t> tolerated_;
  OnReply on_reply_;
  mutable std::mutex mu_;  // loops of different threads may fail at once
  std::string first_error_;
};

}  // namespace corral::bench
