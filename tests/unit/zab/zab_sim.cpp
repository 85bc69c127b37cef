#include "zab_sim.h"

#include <algorithm>
#include <cstdlib>

#include "state/bytes.h"
#include "zab/zab_impl.h"

namespace corral::zab::sim {

struct Sim::Node {
  int64_t id = 0;
  bool observer = false;
  bool is_up = false;
  // --- the disk: survives crashes, minus what was not durable ---
  struct DiskEntry {
    int64_t zxid;
    std::string data;
    uint64_t seq;
    bool durable;
  };
  std::vector<DiskEntry> disk;
  uint64_t append_seq = 0;
  bool sync_running = false;
  bool sync_wanted = false;
  HardState hs;
  int64_t snap_zxid = 0;
  std::vector<Record> snap;
  // --- memory: lost on a crash ---
  std::unique_ptr<NodeOutput> out;
  std::unique_ptr<Zab> zab;
  std::vector<Record> applied;
  int64_t incarnation = 0;
  int64_t since_snapshot = 0;
  int64_t looking = 0;
};

namespace {

std::string encodeRecords(const std::vector<Record>& records) {
  std::string s;
  kernel::ByteWriter w(&s);
  w.u32(static_cast<uint32_t>(records.size()));
  for (const Record& r : records) {
    w.i64(r.zxid);
    w.bytes(r.data);
  }
  return s;
}

bool decodeRecords(std::string_view s, std::vector<Record>* out) {
  kernel::ByteReader r(s);
  uint32_t n = r.count(12);
  out->clear();
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    int64_t z = r.i64();
    out->push_back(Record{z, r.bytes()});
  }
  return r.ok() && r.done();
}

// "op<op>@<origin>" -> op, origin
bool parseOp(const std::string& data, int64_t* op, int64_t* origin) {
  if (data.rfind("op", 0) != 0) return false;
  size_t at = data.find('@');
  if (at == std::string::npos) return false;
  *op = std::stoll(data.substr(2, at - 2));
  *origin = std::stoll(data.substr(at + 1));
  return true;
}

std::pair<int64_t, int64_t> undirected(int64_t a, int64_t b) {
  return {std::min(a, b), std::max(a, b)};
}

}  // namespace

class Sim::NodeOutput : public ZabOutput {
 public:
  NodeOutput(Sim* sim, Node* node) : sim_(sim), n_(node) {}

  void send(int64_t peer, std::string message) override {
    sim_->send(n_->id, peer, std::move(message));
  }
  bool append(int64_t zxid, std::string_view record) override {
    int64_t last = n_->disk.empty() ? n_->snap_zxid : n_->disk.back().zxid;
    if (zxid <= last) {
      sim_->fail("server " + std::to_string(n_->id) + " appended zxid " + std::to_string(zxid) +
                 " after " + std::to_string(last));
      return false;
    }
    n_->disk.push_back({zxid, std::string(record), ++n_->append_seq, false});
    return true;
  }
  void requestSync() override {
    if (n_->sync_running) {
      n_->sync_wanted = true;
      return;
    }
    startSync();
  }
  bool truncateLog(int64_t zxid) override {
    while (!n_->disk.empty() && n_->disk.back().zxid > zxid) n_->disk.pop_back();
    return true;
  }
  bool saveHardState(const HardState& state) override {
    n_->hs = state;
    return true;
  }
  void commit(int64_t zxid, std::string_view record) override {
    sim_->onCommit(*n_, zxid, std::string(record));
  }
  std::string snapshot() override { return encodeRecords(n_->applied); }
  bool installSnapshot(int64_t zxid, std::string_view data) override {
    std::vector<Record> records;
    if (!decodeRecords(data, &records)) {
      sim_->fail("undecodable snapshot");
      return false;
    }
    if ((records.empty() ? 0 : records.back().zxid) != zxid) {
      sim_->fail("snapshot labelled " + std::to_string(zxid) + " ends elsewhere");
      return false;
    }
    n_->applied = records;
    n_->snap = records;
    n_->snap_zxid = zxid;
    truncateLog(zxid);
    n_->disk.clear();  // older records are covered by the snapshot
    sim_->checkPrefix(*n_);
    return true;
  }
  void roleChanged(Role role, int64_t leader, int64_t epoch, bool serving) override {
    sim_->note("t=" + std::to_string(sim_->now_) + " s" + std::to_string(n_->id) + " " +
               roleName(role) + " leader=" + std::to_string(leader) +
               " epoch=" + std::to_string(epoch) + (serving ? " serving" : ""));
    if (role == Role::kLooking) ++n_->looking;
    if (role == Role::kLeading && serving) {
      auto [it, fresh] = sim_->leaders_.emplace(epoch, n_->id);
      if (!fresh && it->second != n_->id)
        sim_->fail("two leaders in epoch " + std::to_string(epoch) + ": " +
                   std::to_string(it->second) + " and " + std::to_string(n_->id));
      if (sim_->any_acked_ && n_->applied.size() <= sim_->acked_max_index_)
        sim_->fail("leader " + std::to_string(n_->id) + " of epoch " + std::to_string(epoch) +
                   " established without acknowledged txn #" +
                   std::to_string(sim_->acked_max_index_));
    }
  }
  void proposalsResumed() override {}
  void onAppMessage(int64_t peer, std::string_view payload) override {
    // "w<op>": a client write forwarded by a learner.
    if (payload.size() < 2 || payload[0] != 'w') return;
    if (!n_->zab->canPropose()) return;  // the client times out and retries elsewhere
    int64_t zxid = n_->zab->nextZxid();
    n_->zab->propose(zxid, "op" + std::string(payload.substr(1)) + "@" + std::to_string(peer));
  }
  std::string pingPayload() override { return {}; }
  void log(corral_log_level, const std::string& message) override {
    sim_->note("t=" + std::to_string(sim_->now_) + " s" + std::to_string(n_->id) + " " + message);
  }

 private:
  void startSync() {
    n_->sync_running = true;
    uint64_t upto = n_->append_seq;
    int64_t incarnation = n_->incarnation;
    Node* n = n_;
    Sim* sim = sim_;
    int64_t delay = static_cast<int64_t>(sim_->rng_() % (sim_->opt_.max_fsync_ms + 1));
    sim_->at(sim_->now_ + delay, [sim, n, upto, incarnation, this] {
      if (n->incarnation != incarnation || !n->is_up) return;
      int64_t durable = n->snap_zxid;
      for (auto& e : n->disk) {
        if (e.seq <= upto) e.durable = true;
        if (e.durable) durable = e.zxid;
      }
      n->sync_running = false;
      n->zab->onDurable(durable, true, sim->now_);
      if (n->sync_wanted && n->is_up && n->incarnation == incarnation) {
        n->sync_wanted = false;
        startSync();
      }
    });
  }

  Sim* sim_;
  Node* n_;
};

Sim::Sim(SimOptions options) : opt_(options), rng_(options.seed) {
  for (int i = 1; i <= opt_.voters + opt_.observers; ++i) {
    auto n = std::make_unique<Node>();
    n->id = i;
    n->observer = i > opt_.voters;
    nodes_[i] = std::move(n);
  }
  drops_ = opt_.drop_rate > 0;
  verbose_ = std::getenv("CORRAL_SIM_VERBOSE") != nullptr;
  for (auto& [id, n] : nodes_) {
    n->is_up = true;
    startNode(*n);
  }
  for (auto& [a, na] : nodes_)
    for (auto& [b, nb] : nodes_)
      if (a < b) linkChanged(a, b);
}

Sim::~Sim() = default;

void Sim::at(int64_t time, std::function<void()> fn) {
  events_.push_back(Event{time, ++seq_, std::move(fn)});
  std::push_heap(events_.begin(), events_.end(), std::greater<Event>());
}

void Sim::fail(const std::string& why) {
  if (failure_.empty()) failure_ = "t=" + std::to_string(now_) + ": " + why;
}

void Sim::note(const std::string& line) {
  trace_.push_back(line);
  size_t keep = verbose_ ? 200000 : 400;
  if (trace_.size() > keep) trace_.erase(trace_.begin(), trace_.begin() + keep / 4);
}

std::string Sim::trace() const {
  std::string s;
  for (const auto& l : trace_) s += l + "\n";
  return s;
}

Sim::Node& Sim::node(int64_t id) {
  return *nodes_.at(id);
}

std::vector<int64_t> Sim::ids() const {
  std::vector<int64_t> v;
  for (const auto& [id, n] : nodes_) v.push_back(id);
  return v;
}

bool Sim::up(int64_t id) const {
  return nodes_.at(id)->is_up;
}

Zab* Sim::zab(int64_t id) {
  return node(id).zab.get();
}

const std::vector<Record>& Sim::applied(int64_t id) const {
  return nodes_.at(id)->applied;
}

std::vector<Record> Sim::log(int64_t id) const {
  std::vector<Record> v;
  for (const auto& e : nodes_.at(id)->disk) v.push_back(Record{e.zxid, e.data});
  return v;
}

int64_t Sim::lookingTransitions(int64_t id) const {
  return nodes_.at(id)->looking;
}

int64_t Sim::servingLeader() const {
  for (const auto& [id, n] : nodes_)
    if (n->is_up && n->zab->role() == Role::kLeading && n->zab->serving()) return id;
  return 0;
}

void Sim::startNode(Node& n) {
  ZabOptions o;
  o.self_id = n.id;
  for (int i = 1; i <= opt_.voters; ++i) o.voters.push_back(i);
  for (int i = opt_.voters + 1; i <= opt_.voters + opt_.observers; ++i) o.observers.push_back(i);
  o.tick_ms = opt_.tick_ms;
  o.init_limit = opt_.init_limit;
  o.sync_limit = opt_.sync_limit;
  o.max_counter = opt_.max_counter;
  o.max_history = opt_.max_history;
  o.finalize_wait_ms = 20;
  n.out = std::make_unique<NodeOutput>(this, &n);
  n.zab = std::make_unique<Zab>(o, n.out.get());
  n.applied = n.snap;
  n.zab->recover(n.hs, n.snap_zxid);
  for (const auto& e : n.disk)
    if (e.zxid > n.snap_zxid) n.zab->recoverRecord(e.zxid, e.data);
  n.sync_running = false;
  n.sync_wanted = false;
  n.since_snapshot = 0;
  n.zab->start(now_);
}

bool Sim::connected(int64_t a, int64_t b) const {
  return nodes_.at(a)->is_up && nodes_.at(b)->is_up && !cut_.count(undirected(a, b));
}

void Sim::linkChanged(int64_t a, int64_t b) {
  auto key = undirected(a, b);
  bool now_up = connected(a, b);
  bool& was = link_up_[key];
  if (was == now_up) return;
  was = now_up;
  ++link_gen_[{a, b}];
  ++link_gen_[{b, a}];
  for (auto [self, other] : {std::pair{a, b}, std::pair{b, a}}) {
    Node* n = &node(self);
    if (!n->is_up) continue;
    int64_t incarnation = n->incarnation;
    int64_t gen = link_gen_[{a, b}];
    at(now_, [this, n, other, incarnation, gen, now_up, a, b] {
      if (!n->is_up || n->incarnation != incarnation || link_gen_[{a, b}] != gen) return;
      if (now_up) {
        n->zab->onPeerUp(other, now_);
      } else {
        n->zab->onPeerDown(other, now_);
      }
    });
  }
}

void Sim::send(int64_t from, int64_t to, std::string msg) {
  if (!connected(from, to)) return;
  if (drops_ && std::uniform_real_distribution<double>(0, 1)(rng_) < opt_.drop_rate) return;
  int64_t gen = link_gen_[{from, to}];
  int64_t delay = static_cast<int64_t>(rng_() % (opt_.max_delay_ms + 1));
  int64_t& last = link_last_delivery_[{from, to}];
  int64_t t = std::max(now_ + delay, last);
  last = t;
  Node* target = &node(to);
  at(t, [this, from, to, gen, target, msg = std::move(msg)] {
    if (link_gen_[{from, to}] != gen || !connected(from, to)) return;
    if (verbose_) {
      Msg m;
      decodeMsg(msg, &m);
      if (m.type != MsgType::kPing && m.type != MsgType::kVote)
        note("t=" + std::to_string(now_) + " " + std::to_string(from) + "->" + std::to_string(to) +
             " type=" + std::to_string(static_cast<int>(m.type)) + " e=" + std::to_string(m.epoch) +
             " z=" + hexZxid(m.zxid) + " f=" + std::to_string(m.flags));
    }
    target->zab->onMessage(from, msg, now_);
  });
}

void Sim::onCommit(Node& n, int64_t zxid, const std::string& data) {
  if (!n.applied.empty() && zxid <= n.applied.back().zxid)
    fail("server " + std::to_string(n.id) + " applied zxid " + std::to_string(zxid) + " after " +
         std::to_string(n.applied.back().zxid));
  n.applied.push_back(Record{zxid, data});
  size_t idx = n.applied.size() - 1;
  if (idx < global_.size()) {
    if (!(global_[idx] == n.applied[idx]))
      fail("server " + std::to_string(n.id) + " applied #" + std::to_string(idx) + " = (" +
           std::to_string(zxid) + "," + data + ") but others applied (" +
           std::to_string(global_[idx].zxid) + "," + global_[idx].data + ")");
  } else {
    global_.push_back(n.applied[idx]);
  }
  int64_t op = 0, origin = 0;
  if (parseOp(data, &op, &origin) && origin == n.id) {
    acked_[op] = zxid;
    acked_max_index_ = std::max(acked_max_index_, idx);
    any_acked_ = true;
  }
  if (opt_.snapshot_every > 0 && ++n.since_snapshot >= opt_.snapshot_every) {
    n.since_snapshot = 0;
    n.snap = n.applied;
    n.snap_zxid = zxid;
  }
}

void Sim::checkPrefix(Node& n) {
  for (size_t i = 0; i < n.applied.size(); ++i) {
    if (i >= global_.size()) {
      fail("server " + std::to_string(n.id) + " holds more applied txns than anyone committed");
      return;
    }
    if (!(global_[i] == n.applied[i])) {
      fail("server " + std::to_string(n.id) + " snapshot differs at #" + std::to_string(i));
      return;
    }
  }
}

void Sim::crash(int64_t id) {
  Node& n = node(id);
  if (!n.is_up) return;
  note("t=" + std::to_string(now_) + " CRASH s" + std::to_string(id));
  n.is_up = false;
  ++n.incarnation;
  n.zab.reset();
  n.out.reset();
  n.applied.clear();
  std::erase_if(n.disk, [](const Node::DiskEntry& e) { return !e.durable; });
  for (const auto& [other, o] : nodes_)
    if (other != id) linkChanged(id, other);
}

void Sim::restart(int64_t id) {
  Node& n = node(id);
  if (n.is_up) return;
  note("t=" + std::to_string(now_) + " RESTART s" + std::to_string(id));
  n.is_up = true;
  startNode(n);
  for (const auto& [other, o] : nodes_)
    if (other != id) linkChanged(id, other);
}

void Sim::cut(int64_t a, int64_t b) {
  if (a == b) return;
  note("t=" + std::to_string(now_) + " CUT " + std::to_string(a) + "-" + std::to_string(b));
  cut_.insert(undirected(a, b));
  linkChanged(a, b);
}

void Sim::heal(int64_t a, int64_t b) {
  if (!cut_.erase(undirected(a, b))) return;
  note("t=" + std::to_string(now_) + " HEAL " + std::to_string(a) + "-" + std::to_string(b));
  linkChanged(a, b);
}

void Sim::isolate(int64_t id) {
  for (const auto& [other, o] : nodes_)
    if (other != id) cut(id, other);
}

void Sim::healAll() {
  auto cuts = cut_;
  for (auto [a, b] : cuts) heal(a, b);
}

int64_t Sim::write(int64_t via) {
  Node& n = node(via);
  if (!n.is_up || !n.zab->serving()) return 0;
  int64_t op = next_op_++;
  if (n.zab->role() == Role::kLeading) {
    if (!n.zab->canPropose()) return 0;
    n.zab->propose(n.zab->nextZxid(), "op" + std::to_string(op) + "@" + std::to_string(via));
    return op;
  }
  return n.zab->sendToLeader("w" + std::to_string(op)) ? op : 0;
}

void Sim::timers() {
  for (auto& [id, n] : nodes_)
    if (n->is_up) n->zab->onTimer(now_);
}

void Sim::randomFaults() {
  std::uniform_real_distribution<double> u(0, 1);
  auto pick = [&] { return static_cast<int64_t>(1 + rng_() % nodes_.size()); };
  if (u(rng_) < opt_.crash_rate) {
    int64_t id = pick();
    if (up(id)) {
      crash(id);
      at(now_ + 20 + static_cast<int64_t>(rng_() % 1500), [this, id] { restart(id); });
    }
  }
  if (u(rng_) < opt_.partition_rate) {
    int64_t a = pick();
    int64_t heal_after = 20 + static_cast<int64_t>(rng_() % 2000);
    if (u(rng_) < 0.3) {
      isolate(a);
      for (int64_t b : ids())
        if (b != a) at(now_ + heal_after, [this, a, b] { heal(a, b); });
    } else {
      int64_t b = pick();
      if (a != b) {
        cut(a, b);
        at(now_ + heal_after, [this, a, b] { heal(a, b); });
      }
    }
  }
}

void Sim::runUntil(int64_t t, bool chaos) {
  std::uniform_real_distribution<double> u(0, 1);
  while (now_ < t && ok()) {
    while (!events_.empty() && events_.front().time <= now_ && ok()) {
      std::pop_heap(events_.begin(), events_.end(), std::greater<Event>());
      Event e = std::move(events_.back());
      events_.pop_back();
      e.fn();
    }
    if (!ok()) return;
    if (now_ % 10 == 0) timers();
    if (chaos) randomFaults();
    if (opt_.write_rate > 0 && u(rng_) < opt_.write_rate)
      write(static_cast<int64_t>(1 + rng_() % nodes_.size()));
    ++now_;
  }
}

bool Sim::runUntil(const std::function<bool()>& pred, int64_t deadline) {
  while (now_ < deadline && ok()) {
    if (pred()) return true;
    runUntil(now_ + 1, false);
  }
  return ok() && pred();
}

bool Sim::settle(int64_t within_ms) {
  drops_ = false;
  opt_.write_rate = 0;
  healAll();
  for (int64_t id : ids()) restart(id);
  int64_t probe = 0;
  int64_t next_probe = now_;
  bool converged = runUntil(
      [&] {
        int64_t leader = servingLeader();
        if (leader == 0) return false;
        if (probe == 0 || (!acked(probe) && now_ >= next_probe)) {
          int64_t op = write(leader);
          if (op != 0) probe = op;
          next_probe = now_ + 200;
          return false;
        }
        if (!acked(probe)) return false;
        for (const auto& [id, n] : nodes_)
          if (!n->zab->serving() || n->applied.size() != global_.size()) return false;
        return true;
      },
      now_ + within_ms);
  if (!converged && ok()) {
    std::string state;
    for (const auto& [id, n] : nodes_)
      state += " s" + std::to_string(id) + "=" + roleName(n->zab->role()) +
               (n->zab->serving() ? "+" : "-") + "/applied " + std::to_string(n->applied.size());
    fail("did not converge within " + std::to_string(within_ms) + " ms after healing (global " +
         std::to_string(global_.size()) + ":" + state + ")");
  }
  return ok();
}

}  // namespace corral::zab::sim
