"""Unmodified ZooKeeper clients from Debian (python3-kazoo, zkCli.sh) against a real corrald on
the zkwire transport. kazoo:
CRUD, every create mode, multi, watches, ephemerals, session expiry and resumption, and
kazoo's lock and election recipes."""
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from kazoo.client import KazooClient
from kazoo.exceptions import (BadVersionError, NoNodeError, NodeExistsError,
                              NotEmptyError, RolledBackError)

BIN = os.environ.get("CORRAL_BIN_DIR", "build/out/bin")
PLUGINS = os.environ.get("CORRAL_PLUGIN_DIR", "build/out/lib/corral/plugins")


def wait_for(condition, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


class Corrald:
    """A corrald on 127.0.0.1 with zkwire on an ephemeral port, stopped by its PID."""

    def __init__(self):
        self.dir = tempfile.TemporaryDirectory(prefix="corral-kazoo-")
        config = os.path.join(self.dir.name, "corrald.toml")
        with open(config, "w") as f:
            f.write(f'[server]\ndata_dir = "data"\ntick_ms = 50\n'
                    f'min_session_timeout_ms = 300\nmax_session_timeout_ms = 20000\n'
                    f'plugin_dir = "{PLUGINS}"\n[storage]\nplugin = "memory"\n'
                    f'[client.zkwire]\nlisten = "127.0.0.1:0"\n')
        self.log = open(os.path.join(self.dir.name, "corrald.log"), "w+")
        self.proc = subprocess.Popen([os.path.join(BIN, "corrald"), "--config", config],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        found = []

        def serving():
            self.log.flush()
            with open(self.log.name) as f:
                m = re.search(r"corrald serving: zkwire on (\S+)", f.read())
            if m:
                found.append(m.group(1))
            return bool(m) or self.proc.poll() is not None

        wait_for(serving)
        if not found:
            raise RuntimeError("corrald did not start: " + open(self.log.name).read())
        self.hosts = found[0]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        self.dir.cleanup()


class KazooTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Corrald()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def client(self, **kw):
        zk = KazooClient(hosts=self.server.hosts, timeout=kw.pop("timeout", 10), **kw)
        zk.start(timeout=10)
        self.addCleanup(lambda: zk.stop() if zk.connected else None)
        return zk

    def test_crud_versions_and_errors(self):
        zk = self.client()
        zk.create("/crud", b"v0")
        data, stat = zk.get("/crud")
        self.assertEqual(data, b"v0")
        self.assertEqual(stat.version, 0)
        zk.set("/crud", b"v1", version=0)
        self.assertEqual(zk.get("/crud")[1].version, 1)
        with self.assertRaises(BadVersionError):
            zk.set("/crud", b"v2", version=0)
        with self.assertRaises(NodeExistsError):
            zk.create("/crud")
        with self.assertRaises(NoNodeError):
            zk.get("/crud/missing")
        zk.create("/crud/child")
        with self.assertRaises(NotEmptyError):
            zk.delete("/crud")
        self.assertEqual(zk.get_children("/crud"), ["child"])
        zk.delete("/crud", recursive=True)
        self.assertIsNone(zk.exists("/crud"))

    def test_every_create_mode(self):
        zk = self.client()
        zk.ensure_path("/modes")
        self.assertEqual(zk.create("/modes/p"), "/modes/p")
        eph = zk.create("/modes/e", ephemeral=True)
        self.assertEqual(zk.exists(eph).ephemeralOwner, zk.client_id[0])
        s1 = zk.create("/modes/s-", sequence=True)
        s2 = zk.create("/modes/es-", ephemeral=True, sequence=True)
        self.assertRegex(s1, r"^/modes/s-\d{10}$")
        self.assertRegex(s2, r"^/modes/es-\d{10}$")
        path, stat = zk.create("/modes/stat", b"x", include_data=True)
        self.assertEqual(stat.dataLength, 1)
        # (kazoo 2.8 has no container or TTL create; the C client test covers those.)

    def test_multi_is_all_or_nothing(self):
        zk = self.client()
        zk.create("/multi", b"")
        t = zk.transaction()
        t.create("/multi/a")
        t.check("/multi", 5)
        results = t.commit()
        self.assertIsInstance(results[0], RolledBackError)
        self.assertIsInstance(results[1], BadVersionError)
        self.assertIsNone(zk.exists("/multi/a"))
        t = zk.transaction()
        t.create("/multi/a", b"1")
        t.set_data("/multi/a", b"2")
        t.check("/multi", 0)
        t.delete("/multi/a")
        self.assertEqual(t.commit()[0], "/multi/a")

    def test_watches_fire_in_another_session(self):
        watcher, writer = self.client(), self.client()
        writer.create("/watched", b"1")
        seen = []
        event = threading.Event()

        @watcher.DataWatch("/watched")
        def on_data(data, stat):
            seen.append(data)
            if data == b"2":
                event.set()

        children = []

        @watcher.ChildrenWatch("/watched")
        def on_children(c):
            children.append(sorted(c))

        writer.set("/watched", b"2")
        self.assertTrue(event.wait(10))
        writer.create("/watched/kid")
        self.assertTrue(wait_for(lambda: ["kid"] in children))

    def test_ephemerals_go_when_the_session_closes(self):
        owner, other = self.client(), self.client()
        owner.create("/lease", ephemeral=True)
        self.assertIsNotNone(other.exists("/lease"))
        owner.stop()
        self.assertIsNone(other.exists("/lease"))

    def test_a_session_resumes_with_its_id_and_password(self):
        first = self.client(timeout=5)
        first.create("/resumable", ephemeral=True)
        session = first.client_id
        second = self.client(client_id=session, timeout=5)
        self.assertEqual(second.client_id[0], session[0])
        self.assertEqual(second.exists("/resumable").ephemeralOwner, session[0])

    def test_a_dead_clients_session_expires(self):
        observer = self.client()
        script = ("from kazoo.client import KazooClient; import sys, time;"
                  f"zk = KazooClient(hosts='{self.server.hosts}', timeout=1); zk.start();"
                  "zk.create('/doomed', ephemeral=True);"
                  "print('%x %s' % (zk.client_id[0], zk.client_id[1].hex()), flush=True);"
                  "time.sleep(60)")
        child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        line = child.stdout.readline().split()
        self.assertIsNotNone(observer.exists("/doomed"))
        child.send_signal(signal.SIGKILL)
        child.wait()
        self.assertTrue(wait_for(lambda: observer.exists("/doomed") is None))
        # Coming back with the expired session is SESSION_EXPIRED, never a silent new one.
        # kazoo is told "Session has expired" and only then starts a session of its own.
        old_id = int(line[0], 16)
        late = KazooClient(hosts=self.server.hosts, client_id=(old_id, bytes.fromhex(line[1])))
        with self.assertLogs("kazoo.client", level="WARNING") as logs:
            late.start(timeout=10)
        self.assertTrue(any("Session has expired" in m for m in logs.output), logs.output)
        self.assertNotEqual(late.client_id[0], old_id)
        late.stop()

    def test_digest_auth_and_acls(self):
        from kazoo.exceptions import NoAuthError
        from kazoo.security import make_digest_acl
        owner = self.client(auth_data=[("digest", "alice:secret")])
        owner.create("/secret", b"s", acl=[make_digest_acl("alice", "secret", all=True)])
        stranger = self.client()
        with self.assertRaises(NoAuthError):
            stranger.get("/secret")
        stranger.add_auth("digest", "alice:secret")
        self.assertEqual(stranger.get("/secret")[0], b"s")
        acl, _ = stranger.get_acls("/secret")
        self.assertEqual(acl[0].id.scheme, "digest")

    def test_watches_survive_a_reconnect(self):
        # A proxy between kazoo and corrald lets the test cut the TCP connection: kazoo
        # reconnects within the session timeout and resumes the same session; its DataWatch
        # sees the change made meanwhile and the ones after.
        import socket
        host, port = self.server.hosts.split(":")
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        links = []

        def pump(a, b):
            try:
                while True:
                    data = a.recv(65536)
                    if not data:
                        break
                    b.sendall(data)
            except OSError:
                pass
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        def accept():
            while True:
                try:
                    client, _ = listener.accept()
                except OSError:
                    return
                upstream = socket.create_connection((host, int(port)))
                links.append((client, upstream))
                threading.Thread(target=pump, args=(client, upstream), daemon=True).start()
                threading.Thread(target=pump, args=(upstream, client), daemon=True).start()

        threading.Thread(target=accept, daemon=True).start()
        self.addCleanup(listener.close)
        proxy = "127.0.0.1:%d" % listener.getsockname()[1]

        writer = self.client()
        writer.create("/rearm", b"0")
        watcher = KazooClient(hosts=proxy, timeout=10)
        watcher.start(timeout=10)
        self.addCleanup(watcher.stop)
        session = watcher.client_id[0]
        seen = []
        fired = threading.Event()

        # kazoo drops one-shot watches on a disconnect (it never sends SetWatches); its
        # DataWatch recipe registers again once the session is back.
        @watcher.DataWatch("/rearm")
        def on_change(data, stat):
            seen.append(data)
            if data == b"1":
                fired.set()

        for client, upstream in list(links):  # cut the line
            client.shutdown(socket.SHUT_RDWR)
        writer.set("/rearm", b"1")  # while kazoo is away
        self.assertTrue(fired.wait(15), "no change seen after the reconnect: %s" % seen)
        self.assertEqual(watcher.client_id[0], session)  # the same session
        writer.set("/rearm", b"2")
        self.assertTrue(wait_for(lambda: b"2" in seen), seen)

    def test_lock_recipe(self):
        a, b = self.client(), self.client()
        lock_a = a.Lock("/locks/resource", "a")
        lock_b = b.Lock("/locks/resource", "b")
        self.assertTrue(lock_a.acquire(timeout=10))
        self.assertFalse(lock_b.acquire(blocking=False))
        self.assertEqual(lock_b.contenders(), ["a"])
        lock_a.release()
        self.assertTrue(lock_b.acquire(timeout=10))
        lock_b.release()

    def test_election_recipe(self):
        a, b = self.client(), self.client()
        leaders = []
        elected = threading.Event()

        def lead(name):
            leaders.append(name)
            elected.set()
            time.sleep(0.3)

        ea, eb = a.Election("/election", "a"), b.Election("/election", "b")
        ta = threading.Thread(target=ea.run, args=(lead, "a"))
        ta.start()
        self.assertTrue(elected.wait(10))
        tb = threading.Thread(target=eb.run, args=(lead, "b"))
        tb.start()
        ta.join(10)
        tb.join(10)
        self.assertEqual(sorted(leaders), ["a", "b"])


ZKCLI = "/usr/share/zookeeper/bin/zkCli.sh"  # Debian's zookeeper package


class ZkCliTest(unittest.TestCase):
    """zkCli.sh, Apache ZooKeeper's own shell, scripted against corrald."""

    @classmethod
    def setUpClass(cls):
        cls.server = Corrald()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def zkcli(self, *commands):
        script = "\n".join(commands) + "\nquit\n"
        r = subprocess.run([ZKCLI, "-server", self.server.hosts], input=script, text=True,
                           capture_output=True, timeout=120)
        return r.stdout + r.stderr

    def test_scripted_session(self):
        self.assertTrue(os.path.exists(ZKCLI), "the zookeeper package is not installed")
        out = self.zkcli("create /cli hello", "create /cli/kid", "set /cli world",
                         "get -s /cli", "ls /cli", "create -s /cli/seq- x",
                         "create -e /cli/eph y", "getEphemerals", "stat /nope",
                         "delete /cli", "setAcl /cli/kid world:anyone:r", "getAcl /cli/kid")
        self.assertIn("Created /cli", out)
        self.assertIn("world", out)
        self.assertIn("dataVersion = 1", out)
        self.assertIn("[kid]", out)
        self.assertRegex(out, r"Created /cli/seq-\d{10}")
        self.assertIn("[/cli/eph]", out)
        self.assertIn("Node does not exist: /nope", out)
        self.assertIn("Node not empty: /cli", out)
        self.assertIn("'world,'anyone\n: r", out)
        # The ephemeral went with zkCli's session; the rest stayed.
        out = self.zkcli("ls /cli", "get /cli")
        self.assertRegex(out, r"\[kid, seq-\d{10}\]")
        self.assertIn("world", out)

    def test_one_command_per_call(self):
        self.assertTrue(os.path.exists(ZKCLI), "the zookeeper package is not installed")
        r = subprocess.run([ZKCLI, "-server", self.server.hosts, "create", "/single", "v"],
                           capture_output=True, text=True, timeout=120)
        self.assertIn("Created /single", r.stdout + r.stderr)
        r = subprocess.run([ZKCLI, "-server", self.server.hosts, "get", "/single"],
                           capture_output=True, text=True, timeout=120)
        self.assertIn("\nv\n", r.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
