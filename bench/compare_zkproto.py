"""A minimal ZooKeeper client protocol (jute over TCP) for bench/compare.py: a pipelined bulk
loader of znodes and a single read, with no dependency beyond the standard library, so the
same code loads Apache ZooKeeper and Corral (zkwire) as fast as the servers take it.

corral-bench cannot do this: its create cell deletes what it created when it ends.
"""
import selectors
import socket
import struct
import time

OP_CREATE, OP_GETDATA, OP_PING, OP_CLOSE = 1, 4, 11, -11
PING_XID = -2
# ACL list with one entry: perms ALL (31), world:anyone
_OPEN_ACL = struct.pack(">ii", 1, 31) + struct.pack(">i", 5) + b"world" + struct.pack(">i", 6) + b"anyone"


class ZkError(Exception):
    pass


def _string(b):
    return struct.pack(">i", len(b)) + b


class Conn:
    """One session on one server, requests pipelined, replies in order (ZooKeeper's guarantee)."""

    def __init__(self, host, port, timeout_ms=30000):
        self.sock = socket.create_connection((host, port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        req = struct.pack(">iqiq", 0, 0, timeout_ms, 0) + _string(b"\0" * 16) + b"\0"
        self.sock.sendall(struct.pack(">i", len(req)) + req)
        self.inbuf = b""
        body = self._read_frame_blocking()
        _, self.timeout_ms, self.session_id = struct.unpack_from(">iiq", body, 0)
        if self.session_id == 0:
            raise ZkError("session refused")
        self.sock.setblocking(False)
        self.xid = 0
        self.outbuf = bytearray()
        self.pending = 0  # requests sent whose reply has not come
        self.last_send = time.monotonic()

    def _read_frame_blocking(self):
        while True:
            frame = self._take_frame()
            if frame is not None:
                return frame
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ZkError("connection closed by the server")
            self.inbuf += chunk

    def _take_frame(self):
        if len(self.inbuf) < 4:
            return None
        (n,) = struct.unpack_from(">i", self.inbuf, 0)
        if len(self.inbuf) < 4 + n:
            return None
        frame = self.inbuf[4:4 + n]
        self.inbuf = self.inbuf[4 + n:]
        return frame

    def queue(self, op, payload):
        self.xid += 1
        req = struct.pack(">ii", self.xid, op) + payload
        self.outbuf += struct.pack(">i", len(req)) + req
        self.pending += 1
        return self.xid

    def queue_create(self, path, data):
        self.queue(OP_CREATE, _string(path.encode()) + _string(data) + _OPEN_ACL + struct.pack(">i", 0))

    def queue_ping(self):
        req = struct.pack(">ii", PING_XID, OP_PING)
        self.outbuf += struct.pack(">i", len(req)) + req
        self.last_send = time.monotonic()

    def flush(self):
        if self.outbuf:
            try:
                n = self.sock.send(self.outbuf)
            except BlockingIOError:
                return
            del self.outbuf[:n]
            self.last_send = time.monotonic()

    def receive(self):
        """Reads what is there; returns the list of (xid, err, body) of the replies it completed."""
        out = []
        try:
            chunk = self.sock.recv(1 << 20)
        except BlockingIOError:
            return out
        if not chunk:
            raise ZkError("connection closed by the server")
        buf = self.inbuf + chunk if self.inbuf else chunk
        pos, end = 0, len(buf)
        while end - pos >= 4:
            (n,) = struct.unpack_from(">i", buf, pos)
            if end - pos - 4 < n:
                break
            xid, _, err = struct.unpack_from(">iqi", buf, pos + 4)
            if xid != PING_XID:
                self.pending -= 1
                out.append((xid, err, None))
            pos += 4 + n
        self.inbuf = buf[pos:]
        return out

    def close(self):
        try:
            self.sock.setblocking(True)
            self.sock.settimeout(2)
            req = struct.pack(">ii", self.xid + 1, OP_CLOSE)
            self.sock.sendall(struct.pack(">i", len(req)) + req)
        except OSError:
            pass
        self.sock.close()


def _pump(conns, sel, until, timeout_s):
    """Runs the connections until until() is true; raises on a failed reply."""
    end = time.monotonic() + timeout_s
    while not until():
        if time.monotonic() > end:
            raise ZkError(f"no progress within {timeout_s} s")
        for c in conns:
            c.flush()
            if not c.pending and not c.outbuf and time.monotonic() - c.last_send > 1.0:
                c.queue_ping()
        for key, _ in sel.select(0.05):
            c = key.data
            for xid, err, _ in c.receive():
                if err != 0:
                    raise ZkError(f"request {xid} failed with error {err}")
                c.done += 1
                c.on_reply()


def load(port, nodes, parents=1000, size=100, connections=8, window=500, root="/compare-load",
         host="127.0.0.1", timeout_s=1800):
    """Creates root, `parents` parents under it and `nodes` persistent znodes of `size` bytes
    spread evenly over the parents. Returns the seconds the children took."""
    conns = [Conn(host, port) for _ in range(connections)]
    sel = selectors.DefaultSelector()
    data = b"x" * size
    try:
        for c in conns:
            c.done = 0
            c.on_reply = lambda: None
            sel.register(c.sock, selectors.EVENT_READ, c)
        first = conns[0]
        first.queue_create(root, b"")
        for p in range(parents):
            first.queue_create(f"{root}/p{p:04d}", b"")
        _pump(conns, sel, lambda: first.done == parents + 1, timeout_s)

        next_node = [0]

        def refill(c):
            while c.pending < window and next_node[0] < nodes:
                i = next_node[0]
                next_node[0] += 1
                c.queue_create(f"{root}/p{i % parents:04d}/n{i:07d}", data)

        for c in conns:
            c.done = 0
            c.on_reply = (lambda c=c: refill(c) if c.pending < window // 2 else None)
            refill(c)
        t0 = time.monotonic()
        _pump(conns, sel, lambda: sum(c.done for c in conns) == nodes, timeout_s)
        return time.monotonic() - t0
    finally:
        for c in conns:
            c.close()
        sel.close()


def node_path(i, parents=1000, root="/compare-load"):
    return f"{root}/p{i % parents:04d}/n{i:07d}"


def get(port, path, host="127.0.0.1", timeout_s=5):
    """One getData; returns the data or raises ZkError (including when the server refuses)."""
    c = Conn(host, port)
    try:
        c.queue(OP_GETDATA, _string(path.encode()) + b"\0")
        c.sock.setblocking(True)
        c.sock.settimeout(timeout_s)
        c.sock.sendall(bytes(c.outbuf))
        c.outbuf.clear()
        while True:
            body = c._read_frame_blocking()
            xid, _, err = struct.unpack_from(">iqi", body, 0)
            if xid == PING_XID:
                continue
            if err != 0:
                raise ZkError(f"getData {path}: error {err}")
            (n,) = struct.unpack_from(">i", body, 16)
            return body[20:20 + max(n, 0)]
    finally:
        c.close()
