"""The failover section of bench/compare.py: a 3-voter ensemble of each server loses its
leader, killed (SIGKILL) or hung (SIGSTOP); the time runs from the signal to the first write
that succeeds through a surviving server.

Both servers are measured the same way, over the ZooKeeper protocol: from the signal on, a
fresh attempt starts every 20 ms, alternating between the two survivors, each one a new
session (itself a write through the leader) and then a create; the first attempt to get its
create acknowledged ends the measurement. Attempts overlap, so a slow or hung attempt does
not hide the moment the ensemble can write again.
"""
import signal
import socket
import statistics
import struct
import threading
import time

import compare_servers as srv
import compare_zkproto as zkp

ATTEMPT_EVERY_S = 0.02
ATTEMPT_TIMEOUT_S = 2.0
# The project's targets for the ratio Corral / ZooKeeper of the median failover time.
TARGETS = {"kill": 0.5, "stop": 0.6}
FAULTS = {"kill": "killed (SIGKILL)", "stop": "hung (SIGSTOP)"}


def _read_frame(sock):
    head = b""
    while len(head) < 4:
        chunk = sock.recv(4 - len(head))
        if not chunk:
            raise ConnectionError("closed")
        head += chunk
    (n,) = struct.unpack(">i", head)
    body = b""
    while len(body) < n:
        chunk = sock.recv(n - len(body))
        if not chunk:
            raise ConnectionError("closed")
        body += chunk
    return body


def create_once(port, path, timeout_s=ATTEMPT_TIMEOUT_S):
    """A new session on port, then one create; True when the create was acknowledged."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as s:
            s.settimeout(timeout_s)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            req = struct.pack(">iqiq", 0, 0, 4000, 0) + zkp._string(b"\0" * 16) + b"\0"
            s.sendall(struct.pack(">i", len(req)) + req)
            _, _, session = struct.unpack_from(">iiq", _read_frame(s), 0)
            if session == 0:
                return False
            payload = (zkp._string(path.encode()) + zkp._string(b"x") + zkp._OPEN_ACL +
                       struct.pack(">i", 0))
            req = struct.pack(">ii", 1, zkp.OP_CREATE) + payload
            s.sendall(struct.pack(">i", len(req)) + req)
            while True:
                xid, _, err = struct.unpack_from(">iqi", _read_frame(s), 0)
                if xid == 1:
                    break
            bye = struct.pack(">ii", 2, zkp.OP_CLOSE)
            s.sendall(struct.pack(">i", len(bye)) + bye)
            return err == 0
    except (OSError, ConnectionError, struct.error):
        return False


def time_to_write(ports, t0, tag, timeout_s=30):
    """Seconds from t0 until an attempt's create succeeded through one of ports."""
    done = threading.Event()
    first = []
    lock = threading.Lock()

    def attempt(port, k):
        if create_once(port, f"/failover-{tag}-{k}") and not done.is_set():
            with lock:
                if not first:
                    first.append(time.monotonic() - t0)
            done.set()

    k = 0
    threads = []
    while not done.is_set() and time.monotonic() - t0 < timeout_s:
        t = threading.Thread(target=attempt, args=(ports[k % len(ports)], k), daemon=True)
        t.start()
        threads.append(t)
        k += 1
        done.wait(ATTEMPT_EVERY_S)
    for t in threads:
        t.join(ATTEMPT_TIMEOUT_S + 1)
    if not first:
        raise srv.ServerError(f"no write through {ports} within {timeout_s} s of the fault")
    return first[0]


def one_failover(servers, fault, tag):
    modes = srv.wait_one_leader(servers)
    leader = servers[modes.index("leader")]
    survivors = [s.port for s in servers if s is not leader]
    end = time.monotonic() + 20
    while not create_once(survivors[0], f"/failover-{tag}-ready"):
        if time.monotonic() > end:
            raise srv.ServerError("the ensemble does not take writes before the fault")
        time.sleep(0.05)
    t0 = time.monotonic()
    leader.proc.send_signal(signal.SIGKILL if fault == "kill" else signal.SIGSTOP)
    try:
        return time_to_write(survivors, t0, tag)
    finally:
        if fault == "kill":
            leader.proc.wait()
            leader.start()  # the same data dir: it rejoins as a follower
        else:
            leader.proc.send_signal(signal.SIGCONT)


def section_failover(a, work, env, fmt):
    """fmt: compare.py's (ratio, fmt_ratio, judge, target_text, met_text)."""
    ratio, fmt_ratio, judge, target_text, met_text = fmt
    groups = {"corral": srv.corral_ensemble(work, a.build, a.tick_ms),
              "zookeeper": srv.zookeeper_ensemble(work, a.tick_ms, env["zk_jvm_flags"])}
    times = {name: {f: [] for f in FAULTS} for name in groups}
    try:
        for g in groups.values():
            for s in g:
                s.start()
        for trial in range(a.failover_trials):
            for fault in FAULTS:
                for name, g in groups.items():
                    secs = one_failover(g, fault, f"{name}-{fault}-{trial}")
                    times[name][fault].append(secs)
                    print(f"  [failover] {name} leader {fault}: first write after "
                          f"{secs * 1000:.0f} ms", flush=True)
    finally:
        for g in groups.values():
            for s in g:
                if s.proc is not None and s.proc.poll() is None:
                    s.proc.send_signal(signal.SIGCONT)
                    s.proc.send_signal(signal.SIGTERM)
        for g in groups.values():
            for s in g:
                s.stop()
    rows = []
    for fault, label in FAULTS.items():
        med = {n: statistics.median(times[n][fault]) for n in groups}
        tgt = ("failover", "<=", TARGETS[fault])
        r = ratio(med["corral"], med["zookeeper"])
        rows.append({"fault": fault, "label": label, "times_s": {n: times[n][fault] for n in groups},
                     "median_s": med, "ratio": r, "target": target_text(tgt),
                     "met": judge(r, tgt), "summary_name": f"failover, leader {label}"})
    lines = [f"### Failover: 3-voter ensembles (tick {a.tick_ms} ms, initLimit 10, syncLimit 5), "
             f"from the signal to the leader to the first write through a survivor, "
             f"{a.failover_trials} trials per fault and server (alternating)", "",
             "| the leader is | Corral min / median / max | ZooKeeper min / median / max | ratio "
             "| target | met |", "|---|---|---|---|---|---|"]
    for row in rows:
        cell = {n: " / ".join(f"{x * 1000:.0f}" for x in (min(row["times_s"][n]),
                                                         row["median_s"][n],
                                                         max(row["times_s"][n]))) + " ms"
                for n in groups}
        lines.append(f"| {row['label']} | {cell['corral']} | {cell['zookeeper']} | "
                     f"{fmt_ratio(row['ratio'])} | {row['target']} | {met_text(row['met'])} |")
    return {"rows": rows, "table": lines}
