#include "batch_plan.h"

#include <algorithm>

#include "zk_protocol.h"

namespace corral::bench {

BatchPlan::BatchPlan(std::vector<int64_t> counts, Encode encode, std::vector<int32_t> tolerated,
                     OnReply on_reply)
    : counts_(std::move(counts)),
      sent_(counts_.size()),
      answered_(counts_.size()),
      encode_(std::move(encode)),
      tolerated_(std::move(tolerated)),
      on_reply_(std::move(on_reply)) {}

bool BatchPlan::next(int index, std::string* out) {
  auto i = static_cast<size_t>(index);
  if (sent_[i] >= counts_[i]) return false;
  encode_(index, sent_[i]++, out);
  return true;
}

void BatchPlan::reply(int index, int32_t err, JuteReader body) {
  ++answered_[static_cast<size_t>(index)];
  if (err == zk::kOk) {
    if (on_reply_) on_reply_(index, body);
    return;
  }
  if (std::find(tolerated_.begin(), tolerated_.end(), err) != tolerated_.end()) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (first_error_.empty())
    first_error_ = "session " + std::to_string(index) + ": " + zk::errorName(err);
}

bool BatchPlan::succeeded(std::string* err) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (!first_error_.empty()) {
    *err = first_error_;
    return false;
  }
  for (size_t i = 0; i < counts_.size(); ++i) {
    if (answered_[i] < counts_[i]) {
      *err = "session " + std::to_string(i) + ": " + std::to_string(counts_[i] - answered_[i]) +
             " of " + std::to_string(counts_[i]) + " requests not done in time";
      return false;
    }
  }
  return true;
}

}  // namespace corral::bench
