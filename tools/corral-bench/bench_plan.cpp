#include "bench_plan.h"

#include <cstdint>

#include "zk_protocol.h"

namespace corral::bench {
namespace {

constexpr size_t kSequenceDigits = 10;
// Frame length, xid, type, then the path's length: the path starts here in every request.
constexpr size_t kPathOffset = 16;

void encodeOp(const std::string& op, const std::string& path, const std::string& data,
              int multi_ops, std::string* out) {
  if (op == "get") {
    zk::encodeRead(out, zk::kGetData, path);
  } else if (op == "exists") {
    zk::encodeRead(out, zk::kExists, path);
  } else if (op == "create") {
    zk::encodeCreate(out, path + "/c-", data, zk::kPersistentSequential);
  } else if (op == "delete") {
    zk::encodeDelete(out, path + "/c-" + std::string(kSequenceDigits, '0'));
  } else if (op == "multi") {
    zk::encodeMultiSetData(out, path, data, multi_ops);
  } else {
    zk::encodeSetData(out, path, data);
  }
}

void writeDigits(char* at, int64_t v) {
  for (size_t i = kSequenceDigits; i-- > 0; v /= 10) at[i] = static_cast<char>('0' + v % 10);
}

}  // namespace

BenchPlan::BenchPlan(const Options& o, const std::vector<std::string>& paths,
                     std::atomic<int64_t>* issued)
    : sessions_(paths.size()),
      mixed_(o.op == "mixed"),
      deletes_(o.op == "delete"),
      multi_ops_(o.op == "multi" ? o.multi_ops : 0),
      delete_limit_(o.max_ops > 0 ? deleteTargetsPerSession(o) : INT64_MAX),
      read_ratio_(o.read_ratio),
      max_ops_(o.max_ops),
      issued_(issued) {
  std::string data(static_cast<size_t>(o.size), 'x');
  for (size_t i = 0; i < paths.size(); ++i) {
    Session& s = sessions_[i];
    encodeOp(mixed_ ? "set" : o.op, paths[i], data, o.multi_ops, &s.frame);
    if (mixed_) encodeOp("get", paths[i], data, o.multi_ops, &s.read_frame);
    s.digits_at = kPathOffset + paths[i].size() + 3;  // after "/c-"
    s.rng = 0x9e3779b97f4a7c15ull * (i + 1);
  }
}

bool BenchPlan::next(int index, std::string* out) {
  Session& s = sessions_[static_cast<size_t>(index)];
  if (deletes_ && s.next_child >= delete_limit_) return false;
  if (max_ops_ > 0 && issued_->fetch_add(1, std::memory_order_relaxed) >= max_ops_) return false;
  const std::string* frame = &s.frame;
  if (mixed_) {
    s.rng ^= s.rng << 13;
    s.rng ^= s.rng >> 7;
    s.rng ^= s.rng << 17;
    if (static_cast<double>(s.rng >> 11) * 0x1p-53 < read_ratio_) frame = &s.read_frame;
  }
  size_t at = out->size();
  out->append(*frame);
  if (deletes_) writeDigits(out->data() + at + s.digits_at, s.next_child++);
  return true;
}

void BenchPlan::reply(int index, int32_t err, JuteReader body) {
  // A multi whose op failed may still carry err 0 in its header: its results tell.
  bool failed = err != zk::kOk;
  if (!failed && multi_ops_ > 0) failed = !zk::multiSetDataSucceeded(body.rest(), multi_ops_);
  if (failed) ++sessions_[static_cast<size_t>(index)].errors;
}

int64_t BenchPlan::errors() const {
  int64_t n = 0;
  for (const Session& s : sessions_) n += s.errors;
  return n;
}

}  // namespace corral::bench
