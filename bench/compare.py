#!/usr/bin/env python3
"""Corral and Apache ZooKeeper side by side on this machine, fsync on for both, same tick,
loopback, driven by the same corral-bench binary (ZooKeeper's C client, or whatever
--driver picks).

Sections (--sections, default all):
  standalone  set/get/exists x sessions x inflight against one server of each
  ensemble    the same cells against 3-voter ensembles (corral-bench gets all three ports)
  memory      resident memory of one server of each holding N znodes of 100 B
  restart     time from starting a server on a store of N znodes until it serves them
  failover    time from killing or hanging a 3-voter ensemble's leader to the next write

Runs alternate between the servers (A B A B ...), tables show medians, the ratio
Corral/ZooKeeper and the project's target for that ratio (met / not met).
Started by bench/compare.sh, which builds Corral first. Helpers: compare_servers.py
(processes, configs, 4lw) and compare_zkproto.py (a pipelined jute client to load znodes).
"""
import argparse
import json
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback

sys.dont_write_bytecode = True  # no __pycache__ in bench/ for the helpers below
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare_failover  # noqa: E402
import compare_servers as srv  # noqa: E402
import compare_zkproto as zkp  # noqa: E402

ROOT = srv.ROOT
SECTIONS = ["standalone", "ensemble", "memory", "restart", "failover"]
NAMES = ["corral", "zookeeper"]
PARENTS = 1000

# The project's targets for the ratio Corral / ZooKeeper.
TARGET_TEXT = [
    "writes: set 8x16 and 32x32 ops/s, standalone and 3-node: ratio >= 3x",
    "reads: get/exists 8x16 and 32x32 ops/s: ratio >= 2x",
    "1x1 latency p50: get/exists ratio <= 0.5x, set <= 0.75x",
    "memory with 100k and 1M znodes of 100 B: ratio <= 0.2x",
    "restart with 100k znodes: ratio <= 0.25x",
    "failover (3 voters) after SIGKILL of the leader: ratio <= 0.5x, after SIGSTOP: <= 0.6x",
]


def cell_target(op, cell):
    """(metric, comparison, bound) for a throughput cell, or None."""
    if cell == "1x1":
        return ("p50", "<=", 0.75 if op == "set" else 0.5) if op in ("set", "get", "exists") else None
    if cell in ("8x16", "32x32"):
        if op == "set":
            return ("ops/s", ">=", 3.0)
        if op in ("get", "exists"):
            return ("ops/s", ">=", 2.0)
    return None


def judge(ratio, target):
    if target is None or ratio is None:
        return None
    _, cmp, bound = target
    return ratio >= bound if cmp == ">=" else ratio <= bound


def target_text(target):
    if target is None:
        return "—"
    metric, cmp, bound = target
    return f"{metric} {'≥' if cmp == '>=' else '≤'} {bound:g}x"


def met_text(ok):
    return "—" if ok is None else ("met" if ok else "**not met**")


def ratio(c, z):
    return c / z if z else None


def fmt_ratio(r):
    return "—" if r is None else f"{r:.2f}x"


# ---------------------------------------------------------------------------------------------
# throughput: standalone and ensemble


def run_cell(a, servers, pids, op, sessions, inflight, work, seconds=None):
    seconds = seconds or a.seconds
    out = os.path.join(work, "cell.json")
    if os.path.exists(out):
        os.remove(out)
    cmd = [os.path.join(a.build, "out/bin/corral-bench"), "--servers",
           ",".join(f"127.0.0.1:{p}" for p in servers),
           "--sessions", str(sessions), "--inflight", str(inflight), "--op", op,
           "--size", "100", "--seconds", str(seconds), "--json", out,
           "--server-pid", ",".join(str(p) for p in pids)]
    if a.driver:
        cmd += ["--driver", a.driver]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds * 10 + 120)
    if r.returncode != 0 or not os.path.exists(out):
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}{r.stderr}")
    with open(out) as f:
        return json.load(f)


def run_matrix(a, targets, work, label):
    """targets: name -> (client ports, pids whose cpu is summed). Returns the rows."""
    rows = []
    keys = ("ops_per_sec", "p50_ms", "p99_ms", "bench_cpu_s", "server_cpu_s")
    if a.warmup > 0:  # not recorded: lets the JVM compile its hot paths before the first cell
        for name in NAMES:
            ports, pids = targets[name]
            run_cell(a, ports, pids, "mixed", 8, 16, work, a.warmup)
    for op in a.ops.split(","):
        for cell in a.cells.split(","):
            s, k = (int(x) for x in cell.split("x"))
            runs = {n: [] for n in NAMES}
            for run in range(a.runs):
                for name in (NAMES if run % 2 == 0 else NAMES[::-1]):
                    ports, pids = targets[name]
                    runs[name].append(run_cell(a, ports, pids, op, s, k, work))
            med = {n: {key: statistics.median(r[key] for r in rs) for key in keys}
                   for n, rs in runs.items()}
            c, z = med["corral"], med["zookeeper"]
            tgt = cell_target(op, cell)
            ops_r = ratio(c["ops_per_sec"], z["ops_per_sec"])
            p50_r = ratio(c["p50_ms"], z["p50_ms"])
            ok = judge(p50_r if tgt and tgt[0] == "p50" else ops_r, tgt)
            rows.append({"op": op, "cell": cell, "corral": c, "zookeeper": z,
                         "runs": runs, "ops_ratio": ops_r, "p50_ratio": p50_r,
                         "target": target_text(tgt) if tgt else None, "met": ok})
            print(f"  [{label}] {op} {cell}: corral {c['ops_per_sec']:.0f}/s p50 "
                  f"{c['p50_ms']:.3f} ms, zookeeper {z['ops_per_sec']:.0f}/s p50 "
                  f"{z['p50_ms']:.3f} ms", flush=True)
    return rows


def matrix_table(rows, cpu_label):
    lines = ["| op | sessions x inflight | Corral ops/s | ZooKeeper ops/s | ratio | Corral p50 ms | "
             f"ZooKeeper p50 ms | p50 ratio | target | met | cpu s: bench / {cpu_label} | "
             f"cpu s: bench / ZooKeeper{' (3)' if '(3)' in cpu_label else ''} |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        c, z = r["corral"], r["zookeeper"]
        lines.append(
            f"| {r['op']} | {r['cell']} | {c['ops_per_sec']:,.0f} | {z['ops_per_sec']:,.0f} | "
            f"{fmt_ratio(r['ops_ratio'])} | {c['p50_ms']:.3f} | {z['p50_ms']:.3f} | "
            f"{fmt_ratio(r['p50_ratio'])} | {r['target'] or '—'} | {met_text(r['met'])} | "
            f"{c['bench_cpu_s']:.1f} / {c['server_cpu_s']:.1f} | "
            f"{z['bench_cpu_s']:.1f} / {z['server_cpu_s']:.1f} |")
    return lines


def rss_table(rows):
    lines = ["| resident memory | Corral | ZooKeeper | ratio |", "|---|---|---|---|"]
    for label, d in rows:
        lines.append(f"| {label} | {d['corral']:.0f} MB | {d['zookeeper']:.0f} MB | "
                     f"{fmt_ratio(ratio(d['corral'], d['zookeeper']))} |")
    return lines


def section_standalone(a, work, env):
    zk = srv.zookeeper_standalone(work, a.tick_ms, env["zk_jvm_flags"]).start()
    co = srv.corral_standalone(work, a.build, a.tick_ms).start()
    try:
        zk.wait_mode()
        co.wait_mode()
        servers = {"corral": co, "zookeeper": zk}
        idle = {n: srv.memory_mb(s.pid)["rss"] for n, s in servers.items()}
        rows = run_matrix(a, {n: ([s.port], [s.pid]) for n, s in servers.items()}, work, "standalone")
        loaded = {n: srv.memory_mb(s.pid)["rss"] for n, s in servers.items()}
    finally:
        co.stop()
        zk.stop()
    res = {"rows": rows, "rss_mb_idle": idle, "rss_mb_after": loaded}
    title = (f"### Standalone: one server each, {a.seconds} s per run, median of {a.runs} runs "
             f"per server (alternating), after a {a.warmup:g} s warm-up of each")
    res["table"] = ([title, ""] + matrix_table(rows, "Corral") + [""] +
                    rss_table([("idle, at start", idle), ("after the runs", loaded)]))
    return res


def section_ensemble(a, work, env):
    zks = srv.zookeeper_ensemble(work, a.tick_ms, env["zk_jvm_flags"])
    cos = srv.corral_ensemble(work, a.build, a.tick_ms)
    try:
        t0 = time.monotonic()
        for s in zks + cos:
            s.start()
        modes = {"zookeeper": srv.wait_one_leader(zks), "corral": srv.wait_one_leader(cos)}
        print(f"  [ensemble] both have one leader after {time.monotonic() - t0:.1f} s: {modes}",
              flush=True)
        groups = {"corral": cos, "zookeeper": zks}
        leader = {n: g[modes[n].index("leader")] for n, g in groups.items()}

        def summed():
            return {n: sum(srv.memory_mb(s.pid)["rss"] for s in g) for n, g in groups.items()}

        idle = summed()
        rows = run_matrix(a, {n: ([s.port for s in g], [s.pid for s in g])
                              for n, g in groups.items()}, work, "ensemble")
        loaded = summed()
        modes_after = {n: [srv.mode(s.port) for s in g] for n, g in groups.items()}
    finally:
        for s in cos + zks:
            if s.proc is not None:
                s.proc.send_signal(signal.SIGTERM)
        for s in cos + zks:
            s.stop()
    res = {"rows": rows, "rss_mb_idle_sum": idle, "rss_mb_after_sum": loaded,
           "modes_at_start": modes, "modes_after": modes_after}
    title = (f"### 3-node ensembles: corral-bench connected to all three client ports, {a.seconds} "
             f"s per run, median of {a.runs} runs per ensemble (alternating), after a "
             f"{a.warmup:g} s warm-up of each; server cpu is the sum of the three")
    res["table"] = ([title, ""] + matrix_table(rows, "Corral (3)") + [""] +
                    rss_table([("idle, at start (sum of 3)", idle),
                               ("after the runs (sum of 3)", loaded)]))
    return res


# ---------------------------------------------------------------------------------------------
# memory and restart


def expected_count(server):
    c = srv.mntr(server.port).get("zk_znode_count")
    return int(c) if c and c.isdigit() else None


def load_server(server, n, label):
    t = zkp.load(server.port, n, parents=PARENTS)
    print(f"  [{label}] {server.name}: {n:,} znodes in {t:.1f} s ({n / t:,.0f}/s)", flush=True)
    return t


def section_memory(a, work, env):
    results = []
    target = ("memory", "<=", 0.2)
    for n in (int(x) for x in a.memory_nodes.split(",")):
        zk = srv.zookeeper_standalone(work, a.tick_ms, env["zk_jvm_flags"], f"zookeeper-mem{n}")
        co = srv.corral_standalone(work, a.build, a.tick_ms, f"corrald-mem{n}")
        try:
            row = {"znodes": n, "load_s": {}, "idle": {}, "loaded": {}, "znode_count": {}}
            for name, s in (("corral", co), ("zookeeper", zk)):
                s.start()
                s.wait_mode()
                row["idle"][name] = srv.memory_mb(s.pid)
                row["load_s"][name] = load_server(s, n, "memory")
            time.sleep(a.settle)
            for name, s in (("corral", co), ("zookeeper", zk)):
                s.check_alive()
                row["loaded"][name] = srv.memory_mb(s.pid)
                row["znode_count"][name] = expected_count(s)
        finally:
            co.stop()
            zk.stop()
            shutil.rmtree(co.data_dir, ignore_errors=True)
            shutil.rmtree(zk.data_dir, ignore_errors=True)
        row["ratio"] = ratio(row["loaded"]["corral"]["rss"], row["loaded"]["zookeeper"]["rss"])
        row["target"] = target_text(target)
        row["met"] = judge(row["ratio"], target)
        results.append(row)
    lines = [f"### Memory: one standalone server each holding N znodes of 100 B under {PARENTS} "
             f"parents (fsync on), VmRSS {a.settle:g} s after loading", "",
             "| znodes | Corral RSS (anon + file) | ZooKeeper RSS (anon + file) | ratio | target | "
             "met | idle RSS Corral / ZooKeeper | load time Corral / ZooKeeper |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        c, z = r["loaded"]["corral"], r["loaded"]["zookeeper"]
        lines.append(
            f"| {r['znodes']:,} x 100 B | {c['rss']:.0f} MB ({c['anon']:.0f} + {c['file']:.0f}) | "
            f"{z['rss']:.0f} MB ({z['anon']:.0f} + {z['file']:.0f}) | {fmt_ratio(r['ratio'])} | "
            f"{r['target']} | {met_text(r['met'])} | {r['idle']['corral']['rss']:.0f} / "
            f"{r['idle']['zookeeper']['rss']:.0f} MB | {r['load_s']['corral']:.1f} / "
            f"{r['load_s']['zookeeper']:.1f} s |")
    lines.append("")
    lines.append("ZooKeeper JVM flags: " + " ".join(env["zk_jvm_flags"]) +
                 f" (heap: {env['zk_heap']}); Corral's file part is mostly LMDB pages it mapped.")
    return {"rows": results, "table": lines}


def timed_restart(server, count, last_path, timeout):
    """Starts server on its store; seconds from the start to srvr Mode, and to the whole tree
    being served (mntr znode count back to `count` and the last loaded znode readable)."""
    server.start()
    t0 = server.started_at
    server.wait_mode(timeout)
    t_mode = time.monotonic() - t0
    end = t0 + timeout
    while True:
        server.check_alive()
        if time.monotonic() > end:
            raise srv.ServerError(f"{server.name} did not serve its {count} znodes in {timeout} s")
        c = expected_count(server)
        if c is not None and c >= count:
            try:
                if len(zkp.get(server.port, last_path)) == 100:
                    break
            except (zkp.ZkError, OSError):
                pass
        time.sleep(0.01)
    t_data = time.monotonic() - t0
    rss = srv.memory_mb(server.pid)["rss"]
    return t_mode, t_data, rss


def section_restart(a, work, env):
    n = a.restart_nodes
    zk = srv.zookeeper_standalone(work, a.tick_ms, env["zk_jvm_flags"], "zookeeper-restart")
    co = srv.corral_standalone(work, a.build, a.tick_ms, "corrald-restart")
    servers = {"corral": co, "zookeeper": zk}
    res = {"znodes": n, "load_s": {}, "count": {}, "first_stop_s": {},
           "runs": {name: [] for name in NAMES}}
    last = zkp.node_path(n - 1, PARENTS)
    try:
        for name, s in servers.items():
            s.start()
            s.wait_mode()
            res["load_s"][name] = load_server(s, n, "restart")
            res["count"][name] = expected_count(s)
            res["first_stop_s"][name] = s.stop()
        for run in range(a.runs):
            for name in (NAMES if run % 2 == 0 else NAMES[::-1]):
                s = servers[name]
                t_mode, t_data, rss = timed_restart(s, res["count"][name], last, 300)
                stop_s = s.stop()
                res["runs"][name].append({"to_mode_s": t_mode, "to_data_s": t_data,
                                          "rss_mb": rss, "stop_s": stop_s})
                print(f"  [restart] {name}: Mode after {t_mode:.3f} s, {res['count'][name]:,} "
                      f"znodes served after {t_data:.3f} s, stop took {stop_s:.2f} s", flush=True)
    finally:
        co.stop()
        zk.stop()
    target = ("restart", "<=", 0.25)
    rows = []
    for key, label in (("to_mode_s", "start to first `srvr` with Mode"),
                       ("to_data_s", f"start to all znodes served (mntr zk_znode_count, get of the "
                                     "last one)"),
                       ("stop_s", "SIGTERM to exit (information)")):
        vals = {name: [r[key] for r in res["runs"][name]] for name in NAMES}
        med = {name: statistics.median(v) for name, v in vals.items()}
        r = ratio(med["corral"], med["zookeeper"])
        tgt = target if key != "stop_s" else None
        rows.append({"measure": key, "label": label, "median_s": med,
                     "min_s": {k: min(v) for k, v in vals.items()},
                     "max_s": {k: max(v) for k, v in vals.items()},
                     "ratio": r, "target": target_text(tgt) if tgt else None,
                     "met": judge(r, tgt)})
    res["rows"] = rows
    rss_after = {name: statistics.median(r["rss_mb"] for r in res["runs"][name]) for name in NAMES}
    res["rss_mb_after_restart"] = rss_after
    lines = [f"### Restart: one standalone server each on a store of {n:,} znodes of 100 B "
             f"(fsync on, stopped by SIGTERM), median (min / max) of {a.runs} restarts", "",
             "| measure | Corral | ZooKeeper | ratio | target | met |", "|---|---|---|---|---|---|"]
    for r in rows:
        cell = {k: f"{r['median_s'][k]:.3f} s ({r['min_s'][k]:.3f} / {r['max_s'][k]:.3f})"
                for k in NAMES}
        lines.append(f"| {r['label']} | {cell['corral']} | {cell['zookeeper']} | "
                     f"{fmt_ratio(r['ratio'])} | {r['target'] or '—'} | {met_text(r['met'])} |")
    lines.append("")
    lines.append(f"Load before the first stop: Corral {res['load_s']['corral']:.1f} s, ZooKeeper "
                 f"{res['load_s']['zookeeper']:.1f} s; znode counts {res['count']}; first SIGTERM "
                 f"to exit: Corral {res['first_stop_s']['corral']:.2f} s, ZooKeeper "
                 f"{res['first_stop_s']['zookeeper']:.2f} s. Resident memory once served again (median): "
                 f"Corral {rss_after['corral']:.0f} MB, ZooKeeper {rss_after['zookeeper']:.0f} MB.")
    res["table"] = lines
    return res


# ---------------------------------------------------------------------------------------------


def snapshot_build(build, work, timeout=300):
    """Copies corrald, corral-bench and the plugins into work, so that every run uses the same
    binaries even when the build directory is rebuilt meanwhile. Returns the copy's root."""
    dest = os.path.join(work, "build")
    end = time.monotonic() + timeout
    while True:
        try:
            shutil.rmtree(dest, ignore_errors=True)
            os.makedirs(os.path.join(dest, "out/bin"))
            for b in ("corrald", "corral-bench"):
                shutil.copy2(os.path.join(build, "out/bin", b), os.path.join(dest, "out/bin", b))
            shutil.copytree(os.path.join(build, "out/lib/corral/plugins"),
                            os.path.join(dest, "out/lib/corral/plugins"))
            r = subprocess.run([os.path.join(dest, "out/bin/corral-bench"), "--help"],
                               capture_output=True, timeout=30)
            if r.returncode in (0, 2):  # runs (its usage exits 2)
                return dest
            err = f"corral-bench --help exited {r.returncode}"
        except (OSError, subprocess.SubprocessError) as e:  # a build is writing them: retry
            err = str(e)
        if time.monotonic() > end:
            raise RuntimeError(err)
        time.sleep(5)


def environment(a):
    env = {"zk_jvm_flags": srv.ZK_DEBIAN_JVM_FLAGS + shlex.split(a.zk_jvm_flags)}
    try:
        out = subprocess.run(["java"] + env["zk_jvm_flags"] + ["-XX:+PrintFlagsFinal", "-version"],
                             capture_output=True, text=True, timeout=60).stdout
        flags = {}
        for line in out.splitlines():
            parts = line.split()
            if len(parts) >= 4 and parts[1] in ("MaxHeapSize", "InitialHeapSize", "UseG1GC"):
                flags[parts[1]] = parts[3]
        gc = "G1" if flags.get("UseG1GC") == "true" else "not G1"
        env["zk_heap"] = (f"initial {int(flags['InitialHeapSize']) >> 20} MB, max "
                          f"{int(flags['MaxHeapSize']) >> 20} MB, {gc}")
    except (OSError, KeyError, ValueError, subprocess.SubprocessError):
        env["zk_heap"] = "unknown"
    env["java"] = subprocess.run(["java", "-version"], capture_output=True,
                                 text=True).stderr.splitlines()[0]
    ver = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "zookeeper"],
                         capture_output=True, text=True).stdout.strip()
    env["zookeeper"] = f"Apache ZooKeeper (Debian zookeeper {ver or '?'})"
    env["corral_commit"] = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                                          capture_output=True, text=True).stdout.strip()
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])
    env["machine"] = f"{os.cpu_count()} cores, {mem_kb / 1048576:.0f} GiB, {platform.platform()}"
    return env


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, os.environ.get("CORRAL_BUILD_DIR", "build")))
    ap.add_argument("--sections", default=",".join(SECTIONS),
                    help=f"comma list of {','.join(SECTIONS)} (default all)")
    ap.add_argument("--seconds", type=int, default=4, help="seconds per throughput run")
    ap.add_argument("--runs", type=int, default=2,
                    help="runs per server and cell (A B A B), and restarts per server")
    ap.add_argument("--tick-ms", type=int, default=200)
    ap.add_argument("--warmup", type=float, default=3,
                    help="seconds of unrecorded mixed 8x16 load on each server before the cells")
    ap.add_argument("--ops", default="set,get,exists")
    ap.add_argument("--cells", default="1x1,8x16,32x32")
    ap.add_argument("--driver", default=None,
                    help="passed to corral-bench as --driver (raw|c); omitted when not given")
    ap.add_argument("--memory-nodes", default="100000,1000000",
                    help="znode counts for the memory section")
    ap.add_argument("--restart-nodes", type=int, default=100000)
    ap.add_argument("--failover-trials", type=int, default=3,
                    help="failovers per fault (SIGKILL, SIGSTOP) and server")
    ap.add_argument("--settle", type=float, default=5, help="seconds between loading and reading RSS")
    ap.add_argument("--zk-jvm-flags", default="",
                    help="extra JVM flags for ZooKeeper after Debian's zkServer.sh ones, e.g. -Xmx4g")
    ap.add_argument("--json", default=None, help="write everything to this file as JSON")
    ap.add_argument("--keep-work", action="store_true", help="keep the temp dir (logs, data)")
    a = ap.parse_args()
    sections = [s.strip() for s in a.sections.split(",") if s.strip()]
    for s in sections:
        if s not in SECTIONS:
            ap.error(f"unknown section {s!r} (known: {', '.join(SECTIONS)})")
    if shutil.which("java") is None or not os.path.exists("/usr/share/java/zookeeper.jar"):
        sys.exit("compare: Apache ZooKeeper is missing (apt-get install zookeeper)")
    if not os.path.isdir(os.path.join(a.build, "out/bin")):
        sys.exit(f"compare: {a.build}/out/bin is missing (build Corral first)")

    command = " ".join(shlex.quote(x) for x in [sys.argv[0]] + sys.argv[1:])
    env = environment(a)
    started = time.time()
    header = [f"# Corral vs Apache ZooKeeper, {time.strftime('%Y-%m-%d %H:%M:%S %Z')}", "",
              f"Command: `{command}`", "",
              f"Corral {env['corral_commit']}, {env['zookeeper']} on {env['java']}; "
              f"{env['machine']}. Both fsync on, tick {a.tick_ms} ms, loopback, 100 B values, "
              f"driver {a.driver or 'corral-bench default'}.", "",
              "ZooKeeper JVM flags (as Debian's zkServer.sh, plus --zk-jvm-flags): "
              f"`{' '.join(env['zk_jvm_flags'])}`; heap {env['zk_heap']}.", "",
              "Targets (ratio Corral / ZooKeeper): " + "; ".join(TARGET_TEXT) + "."]
    print("\n".join(header), flush=True)

    # SIGTERM / SIGHUP unwind like an error, so the finally blocks stop every server started.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda n, _: sys.exit(128 + n))
    work = tempfile.mkdtemp(prefix="corral-compare-")
    results, failed = {}, []
    try:
        a.source_build, a.build = a.build, snapshot_build(a.build, work)
    except (OSError, RuntimeError) as e:
        shutil.rmtree(work, ignore_errors=True)
        sys.exit(f"compare: cannot copy the binaries: {e}")
    fmt = (ratio, fmt_ratio, judge, target_text, met_text)
    funcs = {"standalone": section_standalone, "ensemble": section_ensemble,
             "memory": section_memory, "restart": section_restart,
             "failover": lambda a, sub, env: compare_failover.section_failover(a, sub, env, fmt)}
    try:
        for name in sections:
            print(f"\n[{name}] ...", flush=True)
            t0 = time.monotonic()
            sub = os.path.join(work, name)
            os.makedirs(sub)
            try:
                results[name] = funcs[name](a, sub, env)
                results[name]["seconds_taken"] = time.monotonic() - t0
                print("\n" + "\n".join(results[name]["table"]), flush=True)
            except Exception as e:  # report, go on with the next section
                failed.append(name)
                results[name] = {"error": f"{type(e).__name__}: {e}",
                                 "traceback": traceback.format_exc()}
                print(f"compare: section {name} failed: {type(e).__name__}: {e}"
                      f"\n(logs in {sub})", file=sys.stderr, flush=True)
                a.keep_work = True
            finally:
                srv.stop_all()
    finally:
        srv.stop_all()
        if a.keep_work:
            print(f"\ncompare: logs and data kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)

    summary = []
    for name in sections:
        r = results.get(name, {})
        for row in r.get("rows", []):
            if row.get("met") is None:
                continue
            what = (row["summary_name"] if "summary_name" in row else
                    f"{name} {row['op']} {row['cell']}" if "op" in row else
                    f"memory {row['znodes']:,}" if name == "memory" else
                    "restart " + {"to_mode_s": "to srvr Mode",
                                  "to_data_s": "to all znodes served"}[row["measure"]])
            summary.append((what, row["target"], row["met"]))
    if results:
        print(f"\n## Summary ({(time.time() - started) / 60:.1f} min)\n")
        print("\n".join(["| measure | target | met |", "|---|---|---|"] +
                        [f"| {w} | {t} | {met_text(m)} |" for w, t, m in summary]))
        if failed:
            print(f"\nFailed sections: {', '.join(failed)} (see stderr)")
    if a.json:
        doc = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": command,
               "args": vars(a), "environment": env, "targets": TARGET_TEXT,
               "sections": results, "failed": failed,
               "summary": [{"measure": w, "target": t, "met": m} for w, t, m in summary],
               "minutes": (time.time() - started) / 60}
        with open(a.json, "w") as f:
            json.dump(doc, f, indent=1)
        print(f"\nJSON: {a.json}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
