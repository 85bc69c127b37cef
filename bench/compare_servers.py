"""Starting, watching and stopping the servers bench/compare.py compares: Apache ZooKeeper
(Debian's package) and corrald, standalone or as 3-voter ensembles on 127.0.0.1.

Every process goes through Server.start and is remembered in STARTED, so the caller can stop
all of them by PID in a finally block (stop_all), whatever went wrong.
"""
import os
import signal
import socket
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ZK_CLASSPATH = "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar"
# What Debian's zkServer.sh (with its zkEnv.sh: JMXLOCALONLY=true, no heap setting) passes to
# the JVM besides the log location; the heap is the JVM's own default (1/4 of the RAM, G1).
ZK_DEBIAN_JVM_FLAGS = ["-XX:+HeapDumpOnOutOfMemoryError", "-XX:OnOutOfMemoryError=kill -9 %p",
                       "-Dcom.sun.management.jmxremote",
                       "-Dcom.sun.management.jmxremote.local.only=true"]

STARTED = []  # every Server that has a live process


class ServerError(Exception):
    pass


def free_ports(n):
    """n distinct free ports (the sockets stay open until all are picked)."""
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def four_letter_word(port, word, timeout=1.0):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(word.encode())
            out = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return out.decode(errors="replace")
                out += chunk
    except OSError:
        return ""


def mode(port):
    for line in four_letter_word(port, "srvr").splitlines():
        if line.startswith("Mode:"):
            return line.split(":", 1)[1].strip()
    return None


def mntr(port):
    out = {}
    for line in four_letter_word(port, "mntr").splitlines():
        k, _, v = line.partition("\t")
        out[k.strip()] = v.strip()
    return out


def memory_mb(pid):
    """VmRSS and its anonymous / file-backed parts, in MB."""
    out = {"rss": 0.0, "anon": 0.0, "file": 0.0}
    keys = {"VmRSS:": "rss", "RssAnon:": "anon", "RssFile:": "file"}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k = line.split()[0] if line.strip() else ""
                if k in keys:
                    out[keys[k]] = int(line.split()[1]) / 1024
    except OSError:
        pass
    return out


class Server:
    def __init__(self, name, cmd, port, log, data_dir):
        self.name, self.cmd, self.port, self.log, self.data_dir = name, cmd, port, log, data_dir
        self.proc = None
        self.started_at = None

    @property
    def pid(self):
        return self.proc.pid

    def start(self):
        logf = open(self.log, "a")
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(self.cmd, stdout=logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        logf.close()
        STARTED.append(self)
        return self

    def check_alive(self):
        if self.proc.poll() is not None:
            raise ServerError(f"{self.name} exited with {self.proc.returncode} (log: {self.log})")

    def wait_mode(self, timeout=60, modes=None):
        """Waits for srvr to show a Mode (one of `modes` if given); returns it."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.check_alive()
            m = mode(self.port)
            if m and (modes is None or m in modes):
                return m
            time.sleep(0.01)
        raise ServerError(f"{self.name} did not serve within {timeout} s (log: {self.log})")

    def stop(self, timeout=60):
        """SIGTERM, then wait for this PID (SIGKILL after timeout); returns seconds it took."""
        if self.proc is None:
            return 0.0
        t0 = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self in STARTED:
            STARTED.remove(self)
        return time.monotonic() - t0


def stop_all():
    for s in list(STARTED):
        if s.proc.poll() is None:
            s.proc.send_signal(signal.SIGTERM)
    for s in list(STARTED):
        s.stop(timeout=20)


def _write_zoo_cfg(path, tick, data, port, extra=""):
    with open(path, "w") as f:
        f.write(f"tickTime={tick}\ndataDir={data}\nclientPort={port}\n"
                "clientPortAddress=127.0.0.1\nadmin.enableServer=false\n"
                "4lw.commands.whitelist=*\nmaxClientCnxns=0\nforceSync=yes\n" + extra)


def _zk_cmd(work, name, cfg, jvm_flags, main):
    return (["java", f"-Dzookeeper.log.dir={work}", f"-Dzookeeper.log.file={name}.log",
             f"-XX:HeapDumpPath={work}"] + jvm_flags +
            ["-cp", ZK_CLASSPATH, main, cfg])


def zookeeper_standalone(work, tick, jvm_flags, name="zookeeper"):
    port, = free_ports(1)
    data = os.path.join(work, f"{name}-data")
    os.makedirs(data)
    cfg = os.path.join(work, f"{name}.cfg")
    _write_zoo_cfg(cfg, tick, data, port)
    return Server(name, _zk_cmd(work, name, cfg, jvm_flags,
                                "org.apache.zookeeper.server.ZooKeeperServerMain"),
                  port, os.path.join(work, f"{name}.out"), data)


def zookeeper_ensemble(work, tick, jvm_flags, n=3, init_limit=10, sync_limit=5):
    ports = free_ports(3 * n)
    client, peer, election = ports[:n], ports[n:2 * n], ports[2 * n:]
    servers_cfg = "".join(f"server.{i + 1}=127.0.0.1:{peer[i]}:{election[i]}\n" for i in range(n))
    out = []
    for i in range(n):
        name = f"zookeeper{i + 1}"
        data = os.path.join(work, f"{name}-data")
        os.makedirs(data)
        with open(os.path.join(data, "myid"), "w") as f:
            f.write(f"{i + 1}\n")
        cfg = os.path.join(work, f"{name}.cfg")
        _write_zoo_cfg(cfg, tick, data, client[i],
                       f"initLimit={init_limit}\nsyncLimit={sync_limit}\n" + servers_cfg)
        out.append(Server(name, _zk_cmd(work, name, cfg, jvm_flags,
                                        "org.apache.zookeeper.server.quorum.QuorumPeerMain"),
                          client[i], os.path.join(work, f"{name}.out"), data))
    return out


def corral_standalone(work, build, tick, name="corrald"):
    port, zmq = free_ports(2)
    data = os.path.join(work, f"{name}-data")
    cmd = [os.path.join(build, "out/bin/corrald"), "--config",
           os.path.join(ROOT, "configs/standalone.toml"),
           "--set", f"server.data_dir={data}", "--set", f"server.tick_ms={tick}",
           "--set", f"server.min_session_timeout_ms={2 * tick}",
           "--set", f"client.zkwire.listen=127.0.0.1:{port}",
           "--set", "client.zkwire.max_connections_per_ip=1000",
           "--set", f"client.zmq.listen=tcp://127.0.0.1:{zmq}",
           "--set", f"server.plugin_dir={os.path.join(build, 'out/lib/corral/plugins')}"]
    return Server(name, cmd, port, os.path.join(work, f"{name}.log"), data)


def corral_ensemble(work, build, tick, n=3, init_limit=10, sync_limit=5):
    """n voters like configs/ensemble-3/node*.toml: lmdb with fsync, free ports, temp data."""
    ports = free_ports(3 * n)
    client, native, peer = ports[:n], ports[n:2 * n], ports[2 * n:]
    voters = ", ".join(f'"{i + 1}=127.0.0.1:{peer[i]}"' for i in range(n))
    plugins = os.path.join(build, "out/lib/corral/plugins")
    out = []
    for i in range(n):
        name = f"corrald{i + 1}"
        data = os.path.join(work, f"{name}-data")
        cfg = os.path.join(work, f"{name}.toml")
        with open(cfg, "w") as f:
            f.write(f"""[server]
id = {i + 1}
data_dir = "{data}"
tick_ms = {tick}
init_limit = {init_limit}
sync_limit = {sync_limit}
min_session_timeout_ms = {2 * tick}
max_session_timeout_ms = {200 * tick}
plugin_dir = "{plugins}"

[ensemble]
servers = [{voters}]

[peer]
plugin = "tcp"

[storage]
plugin = "lmdb"
[storage.lmdb]
path = "lmdb"
map_size_mb = 4096
sync = "fsync"

[client.zkwire]
listen = "127.0.0.1:{client[i]}"
max_connections_per_ip = 1000
[client.zmq]
listen = "tcp://127.0.0.1:{native[i]}"

[auth]
providers = ["world", "digest", "ip"]
""")
        out.append(Server(name, [os.path.join(build, "out/bin/corrald"), "--config", cfg],
                          client[i], os.path.join(work, f"{name}.log"), data))
    return out


def wait_one_leader(servers, timeout=90):
    """Waits until every server says leader or follower and exactly one says leader."""
    end = time.monotonic() + timeout
    modes = []
    while time.monotonic() < end:
        for s in servers:
            s.check_alive()
        modes = [mode(s.port) for s in servers]
        if modes.count("leader") == 1 and modes.count("follower") == len(servers) - 1:
            return modes
        time.sleep(0.1)
    raise ServerError(f"no single leader within {timeout} s: modes {modes}")
