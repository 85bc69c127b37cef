#!/usr/bin/env python3
"""Corral and Apache ZooKeeper side by side on this machine, standalone, fsync on for both,
same tick, loopback, driven by the same corral-bench binary (ZooKeeper's C client).

Runs every cell against each server in turn (A B A B ...), takes the median of the runs and
prints a table with the ratio Corral/ZooKeeper per cell, plus both servers' resident memory.
Started by bench/compare.sh, which builds Corral first.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ZK_CLASSPATH = "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def four_letter_word(port, word):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(word.encode())
            out = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    return out.decode(errors="replace")
                out += chunk
    except OSError:
        return ""


def wait_ready(port, proc, what, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            sys.exit(f"compare: {what} exited at start (see its log)")
        if four_letter_word(port, "srvr").find("Mode:") >= 0:
            return
        time.sleep(0.1)
    sys.exit(f"compare: {what} did not serve within {timeout} s")


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0


def start_zookeeper(work, tick):
    port = free_port()
    data = os.path.join(work, "zk-data")
    os.makedirs(data)
    cfg = os.path.join(work, "zoo.cfg")
    with open(cfg, "w") as f:
        f.write(f"tickTime={tick}\ndataDir={data}\nclientPort={port}\n"
                "clientPortAddress=127.0.0.1\nadmin.enableServer=false\n"
                "4lw.commands.whitelist=*\nmaxClientCnxns=0\n")  # forceSync defaults to yes
    log = open(os.path.join(work, "zookeeper.log"), "w")
    proc = subprocess.Popen(["java", "-cp", ZK_CLASSPATH, f"-Dzookeeper.log.dir={work}",
                             "org.apache.zookeeper.server.ZooKeeperServerMain", cfg],
                            stdout=log, stderr=subprocess.STDOUT)
    wait_ready(port, proc, "ZooKeeper")
    return proc, port


def start_corral(work, build, tick):
    port = free_port()
    data = os.path.join(work, "corral-data")
    log = open(os.path.join(work, "corrald.log"), "w")
    proc = subprocess.Popen(
        [os.path.join(build, "out/bin/corrald"), "--config",
         os.path.join(ROOT, "configs/standalone.toml"),
         "--set", f"server.data_dir={data}", "--set", f"server.tick_ms={tick}",
         "--set", f"server.min_session_timeout_ms={2 * tick}",
         "--set", f"client.zkwire.listen=127.0.0.1:{port}",
         "--set", "client.zkwire.max_connections_per_ip=1000",
         "--set", f"client.zmq.listen=tcp://127.0.0.1:{free_port()}",
         "--set", f"server.plugin_dir={os.path.join(build, 'out/lib/corral/plugins')}"],
        stdout=log, stderr=subprocess.STDOUT)
    wait_ready(port, proc, "corrald")
    return proc, port


def run_cell(build, port, pid, op, sessions, inflight, seconds, work):
    out = os.path.join(work, "cell.json")
    cmd = [os.path.join(build, "out/bin/corral-bench"), "--servers", f"127.0.0.1:{port}",
           "--sessions", str(sessions), "--inflight", str(inflight), "--op", op,
           "--size", "100", "--seconds", str(seconds), "--json", out, "--server-pid", str(pid)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds * 10 + 60)
    if r.returncode != 0 or not os.path.exists(out):
        sys.exit(f"compare: {' '.join(cmd)} failed:\n{r.stdout}{r.stderr}")
    with open(out) as f:
        return json.load(f)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, os.environ.get("CORRAL_BUILD_DIR", "build")))
    ap.add_argument("--seconds", type=int, default=4)
    ap.add_argument("--runs", type=int, default=2, help="runs per server and cell (A B A B)")
    ap.add_argument("--tick-ms", type=int, default=200)
    ap.add_argument("--ops", default="set,get,exists")
    ap.add_argument("--cells", default="1x1,8x16,32x32")
    a = ap.parse_args()
    if shutil.which("java") is None or not os.path.exists("/usr/share/java/zookeeper.jar"):
        sys.exit("compare: Apache ZooKeeper is missing (apt-get install zookeeper)")
    work = tempfile.mkdtemp(prefix="corral-compare-")
    zk, zk_port = start_zookeeper(work, a.tick_ms)
    corral, corral_port = start_corral(work, a.build, a.tick_ms)
    servers = {"corral": (corral, corral_port), "zookeeper": (zk, zk_port)}
    idle = {name: rss_mb(p.pid) for name, (p, _) in servers.items()}
    rows = []
    try:
        for op in a.ops.split(","):
            for cell in a.cells.split(","):
                s, k = (int(x) for x in cell.split("x"))
                results = {"corral": [], "zookeeper": []}
                order = ["corral", "zookeeper"]
                for run in range(a.runs):
                    for name in (order if run % 2 == 0 else order[::-1]):
                        p, port = servers[name]
                        results[name].append(run_cell(a.build, port, p.pid, op, s, k, a.seconds, work))
                med = {n: {key: statistics.median(r[key] for r in rs)
                           for key in ("ops_per_sec", "p50_ms", "p99_ms", "bench_cpu_s", "server_cpu_s")}
                       for n, rs in results.items()}
                rows.append((op, cell, med))
                c, z = med["corral"], med["zookeeper"]
                print(f"{op} {cell}: corral {c['ops_per_sec']:.0f}/s p50 {c['p50_ms']:.3f} ms, "
                      f"zookeeper {z['ops_per_sec']:.0f}/s p50 {z['p50_ms']:.3f} ms", flush=True)
        loaded = {name: rss_mb(p.pid) for name, (p, _) in servers.items()}
    finally:
        for p, _ in servers.values():
            p.send_signal(signal.SIGTERM)
        for p, _ in servers.values():
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)

    print(f"\nStandalone, fsync on, 100 B values, tick {a.tick_ms} ms, {a.seconds} s per run, "
          f"median of {a.runs} runs per server (alternating), {time.strftime('%Y-%m-%d')}\n")
    print("| op | sessions x inflight | Corral ops/s | ZooKeeper ops/s | ratio | Corral p50 ms | "
          "ZooKeeper p50 ms | p50 ratio | bench cpu s / Corral cpu s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for op, cell, m in rows:
        c, z = m["corral"], m["zookeeper"]
        print(f"| {op} | {cell} | {c['ops_per_sec']:,.0f} | {z['ops_per_sec']:,.0f} | "
              f"{c['ops_per_sec'] / max(z['ops_per_sec'], 1):.2f}x | {c['p50_ms']:.3f} | "
              f"{z['p50_ms']:.3f} | {c['p50_ms'] / max(z['p50_ms'], 1e-9):.2f}x | "
              f"{c['bench_cpu_s']:.1f} / {c['server_cpu_s']:.1f} |")
    print("\n| resident memory | Corral | ZooKeeper | ratio |\n|---|---|---|---|")
    for label, d in (("idle, at start", idle), ("after the runs", loaded)):
        print(f"| {label} | {d['corral']:.0f} MB | {d['zookeeper']:.0f} MB | "
              f"{d['corral'] / max(d['zookeeper'], 1):.2f}x |")


if __name__ == "__main__":
    main()
