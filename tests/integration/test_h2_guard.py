"""The HTTP/2 guard (src/guard/) on the real server.

Frame limits: a CONTINUATION flood (HEADERS without END_HEADERS, then
endless CONTINUATION frames) and a PING flood are closed, over plaintext and
over TLS (the guard counts decrypted bytes there), the abuse is logged with
the client's address (TLS too) and counted (product_abusive_connections_closed_total
on the metrics port goes up by one for that reason, and for no other), a
legitimate gRPC client is served before the attack and a new one after it,
and the server stops cleanly (exit status 0 after SIGTERM: under ASan a leak
or any report at shutdown fails the case).

Connection identity (each of these failed on the guard that counted by
address text, see the note in each):
  - a connection that made L cancels and left, then a new connection from
    the same address AND port cancelling once within the second: not shut;
  - calls cancelled by the server's max-connection-age (GOAWAY, then the
    transport ends) do not count as client resets;
  - a reset storm is caught while the server's descriptors are all in use
    (EMFILE);
  - two connections from one client address AND port (one to the API port,
    one to the health port), one flooding calls to an unknown method: that
    one is closed, the other is not;
  - over TLS, a reset flood is caught and named, also when the client splits
    its ClientHello so that the server's first read is 3 bytes.

Each attack is bounded: at most 8 MB sent or 10 s (x SLOW); every wait is
a hang guard."""
import errno
import os
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time

import harness as h
import test_metrics as tm
from harness import SLOW
import h2attack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
MAX_BYTES = 8 << 20
GEN = os.path.join(h.SRC, "certs", "gen-dev-certs.sh")
S = {}


def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", sid) + payload


def connect(srv, tls):
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=5 * SLOW)
    if not tls:
        return sock
    ctx = ssl.create_default_context(cafile=os.path.join(S["pki"], "ca.crt"))
    ctx.check_hostname = False
    ctx.set_alpn_protocols(["h2"])
    return ctx.wrap_socket(sock, server_hostname="localhost")


def flood(srv, tls, chunk):
    """Sends the preface, SETTINGS, then `chunk` again and again until the
    server closes the connection or the budget is spent. Returns the bytes
    sent before the close, or None if it never closed."""
    sock = connect(srv, tls)
    S["flood_peer"] = "ipv4:127.0.0.1:%d" % sock.getsockname()[1]
    sent = 0
    try:
        sock.sendall(PREFACE + frame(4, 0, 0))
        deadline = time.monotonic() + 10 * SLOW
        while sent < MAX_BYTES and time.monotonic() < deadline:
            try:
                sock.sendall(chunk)
            except (OSError, ssl.SSLError):
                return sent
            sent += len(chunk)
        # The budget is spent: a closed connection now reads EOF or fails.
        sock.settimeout(5 * SLOW)
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    return sent
        except (OSError, ssl.SSLError, socket.timeout) as e:
            return sent if not isinstance(e, socket.timeout) else None
    finally:
        sock.close()


def hpack_len(n):
    """An HPACK string length with a 7-bit prefix, no Huffman."""
    if n < 127:
        return bytes([n])
    out, n = bytearray([0x7f]), n - 127
    while n >= 128:
        out.append((n & 0x7f) | 0x80)
        n >>= 7
    return bytes(out + bytes([n]))


def continuation_chunk():
    """HEADERS without END_HEADERS, then small CONTINUATION frames, each a
    valid literal header (never indexed, "x-a: b"): the block stays far
    below the core's metadata limit, so only the frame count can stop it."""
    field = b"\x10" + hpack_len(3) + b"x-a" + hpack_len(1) + b"b"
    opening = frame(1, 0, 1, b"\x83\x86" + b"\x04" + hpack_len(4) + b"/x/y")  # POST, http, :path
    return opening + frame(9, 0, 1, field) * 400


def ping_chunk():
    return frame(6, 0, 0, b"\x00" * 8) * 200


def goaway_chunk():
    return frame(7, 0, 0, b"\x00" * 8) * 200


def small_data_chunk():
    """One-byte DATA frames: more than a connection's 1,024 in one read
    (a TLS record holds some 1,600), so the guard's verdict comes before
    the core has parsed any of them."""
    return frame(0, 0, 1, b"x") * 2000


REASONS = ("header_block", "ping_flood", "settings_flood", "empty_frames", "rst_flood",
           "zero_window", "unacked_settings", "goaway_flood", "small_data", "pending_data",
           "rapid_reset", "unknown_methods", "memory")


def abusive_closed(srv):
    """{reason: product_abusive_connections_closed_total} from the metrics port."""
    m = tm.scrape(srv)
    return {r: m.get(tm.key("product_abusive_connections_closed_total", reason=r), 0.0)
            for r in REASONS}


def grpc_call(srv, tls):
    """A real gRPC call (ListProducts) on a new channel of the attack's kind;
    raises when it does not end OK."""
    grpc = h.grpc_mod()
    if tls:
        with open(os.path.join(S["pki"], "ca.crt"), "rb") as f:
            creds = grpc.ssl_channel_credentials(root_certificates=f.read())
        ch = h.channel(srv.addr, creds,
                       options=[("grpc.ssl_target_name_override", "localhost")])
    else:
        ch = h.channel(srv.addr)
    try:
        fn = ch.unary_unary(h.SERVICE + "ListProducts", request_serializer=lambda b: b,
                            response_deserializer=lambda b: b)
        fn(b"", timeout=20 * SLOW)  # a hang guard: a slow answer is still an answer
    finally:
        ch.close()


def check(tls, name, chunk, reason, *extra):
    args = list(extra) + ["--metrics-listen", "127.0.0.1:0"]
    if tls:
        args += ["--tls-cert", os.path.join(S["pki"], "server.crt"),
                "--tls-key", os.path.join(S["pki"], "server.key")]
    srv = h.Server(*args, insecure=not tls)
    srv.start()
    try:
        grpc_call(srv, tls)  # served before the attack
        before = abusive_closed(srv)
        sent = flood(srv, tls, chunk)
        if sent is None:
            raise AssertionError("%s: never closed after %d bytes" % (name, MAX_BYTES))
        if sent >= MAX_BYTES:
            raise AssertionError("%s: closed only after the whole budget" % name)
        line = srv.wait_log(lambda l: l.get("msg") == "closed an abusive connection" and
                            l.get("reason") == reason)
        # The connection's own address, TLS too (the guard ties the SSL to it).
        if line.get("peer") != S["flood_peer"]:
            raise AssertionError("%s: the abuse line names %r, the client was %s" % (
                name, line.get("peer"), S["flood_peer"]))
        if srv.proc.poll() is not None:
            raise AssertionError("%s: the server died" % name)
        # Counted once, under its reason (the log line is written with the
        # count, so the count is there once the line is).
        after = abusive_closed(srv)
        grew = {r: after[r] - before[r] for r in REASONS if after[r] != before[r]}
        h.expect_eq(grew, {reason: 1.0}, "%s: product_abusive_connections_closed_total "
                    "growth by reason" % name)
        grpc_call(srv, tls)  # a new legitimate client is served after it
        print("  %-28s closed after %.1f MB" % (name, sent / 1048576.0))
        h.expect_eq(srv.stop(), 0, "%s: exit status after SIGTERM (stderr tail %r)" % (
            name, srv.stderr()[-1500:]))
    finally:
        srv.cleanup()


def test_goaway_flood_tls():
    check(True, "goaway flood (tls)", goaway_chunk(), "goaway_flood")


def test_small_data_tls():
    check(True, "small DATA frames (tls)", small_data_chunk(), "small_data")


def test_continuation_flood_plaintext():
    check(False, "continuation (plaintext)", continuation_chunk(), "header_block")


def test_continuation_flood_tls():
    check(True, "continuation (tls)", continuation_chunk(), "header_block")


# Ping strikes off: the core closes a connection after its third early PING
# when it parses them first, which over TLS (one record per read, fewer
# frames than the limit) it always does; this tests the frame guard.
def test_ping_flood_plaintext():
    check(False, "ping flood (plaintext)", ping_chunk(), "ping_flood", "--max-ping-strikes", "0")


def test_ping_flood_tls():
    check(True, "ping flood (tls)", ping_chunk(), "ping_flood", "--max-ping-strikes", "0")


WATCH = "/grpc.health.v1.Health/Watch"


class SplitTLS:
    """A TLS client socket (the few calls Raw makes) whose ClientHello goes
    out in two TCP segments, the first of 3 bytes: a server that reads the
    first alone sees less than a record header. Built on ssl.SSLObject so the
    test chooses how the handshake bytes are sent."""

    def __init__(self, sock, ctx):
        self.sock = sock
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_hostname="localhost")
        first = True
        deadline = time.monotonic() + 20 * SLOW
        while True:
            try:
                self.obj.do_handshake()
                done = True
            except ssl.SSLWantReadError:
                done = False
            data = self.out.read()
            if data and first:
                # The rest after a pause: the server has (almost always) read
                # the 3 bytes alone by then. A pass never depends on it.
                sock.sendall(data[:3])
                time.sleep(0.2)
                data = data[3:]
                first = False
            if data:
                sock.sendall(data)
            if done:
                break
            if time.monotonic() > deadline:
                raise AssertionError("TLS handshake with a split ClientHello: no end")
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            got = sock.recv(65536)
            if not got:
                raise ssl.SSLError("the server ended the handshake")
            self.inc.write(got)

    def settimeout(self, t):
        self.sock.settimeout(t)

    def sendall(self, data):
        self.obj.write(data)
        self.sock.sendall(self.out.read())

    def recv(self, n):
        while True:
            try:
                return self.obj.read(n)
            except ssl.SSLWantReadError:
                got = self.sock.recv(65536)
                if not got:
                    return b""
                self.inc.write(got)
            finally:
                pending = self.out.read()
                if pending:
                    self.sock.sendall(pending)

    def close(self):
        self.sock.close()


class Raw:
    """A hand-written HTTP/2 client on one connection, from a chosen local
    port (SO_REUSEADDR), that opens health Watch streams and resets them."""

    def __init__(self, port, local_port=0, tls=False, split_hello=False):
        deadline = time.monotonic() + 20 * SLOW
        while True:  # the port may still be settling after its last user
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.settimeout(10 * SLOW)
            try:
                s.bind(("127.0.0.1", local_port))
                s.connect(("127.0.0.1", port))
                break
            except OSError as e:
                s.close()
                if e.errno not in (errno.EADDRINUSE, errno.EADDRNOTAVAIL) or \
                        time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        self.local_port = s.getsockname()[1]
        if tls:
            ctx = ssl.create_default_context(cafile=os.path.join(S["pki"], "ca.crt"))
            ctx.check_hostname = False
            ctx.set_alpn_protocols(["h2"])
            s = SplitTLS(s, ctx) if split_hello else ctx.wrap_socket(s, server_hostname="localhost")
        self.sock = s
        self.port = port
        self.peer = "ipv4:127.0.0.1:%d" % self.local_port
        self.buf = b""
        self.data_on = set()
        self.ended_on = set()  # streams the server ended (a HEADERS with END_STREAM)
        self.goaway = False
        self.ping_acks = 0
        self.settings_acked = False
        self.block = h2attack.request_block(port, WATCH)
        s.sendall(PREFACE + frame(4, 0, 0))
        # The server's stream limit holds once its SETTINGS are acknowledged:
        # before, more than 200 streams would be closed for that alone.
        self.wait(lambda: self.settings_acked, "the server's SETTINGS")

    def _pump(self, deadline):
        """Reads what the server sent; False once the connection ended."""
        self.sock.settimeout(max(0.01, min(0.2, deadline - time.monotonic())))
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return True
        except (OSError, ssl.SSLError):
            return False
        if not data:
            return False
        self.buf += data
        while len(self.buf) >= 9:
            n = int.from_bytes(self.buf[:3], "big")
            if len(self.buf) < 9 + n:
                break
            ftype, flags = self.buf[3], self.buf[4]
            sid = int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF
            self.buf = self.buf[9 + n:]
            if ftype == 4 and not flags & 1:
                self.sock.sendall(frame(4, 1, 0))  # SETTINGS ACK
                self.settings_acked = True
            elif ftype == 0:
                self.data_on.add(sid)
            elif ftype == 1 and flags & 1:
                self.ended_on.add(sid)
            elif ftype == 7:
                self.goaway = True
            elif ftype == 6 and flags & 1:
                self.ping_acks += 1
        return True

    def wait(self, pred, what):
        deadline = time.monotonic() + 20 * SLOW
        while not pred():
            if time.monotonic() > deadline:
                raise AssertionError("%s: not within %ss" % (what, 20 * SLOW))
            if not self._pump(deadline):
                raise AssertionError("%s: the connection ended" % what)

    def watch(self, sids):
        """Opens a Watch stream on each id and waits for its first status."""
        self.sock.sendall(b"".join(
            frame(1, 4, sid, self.block) + frame(0, 1, sid, h2attack.grpc_message(b""))
            for sid in sids))
        self.wait(lambda: all(sid in self.data_on for sid in sids), "Watch answers")

    def unknown(self, sids, path="/no.Such/Method"):
        """Calls `path` (served by nobody) on each id, in one write, and
        waits for every answer (UNIMPLEMENTED trailers)."""
        block = h2attack.request_block(self.port, path)
        self.sock.sendall(b"".join(
            frame(1, 4, sid, block) + frame(0, 1, sid, h2attack.grpc_message(b""))
            for sid in sids))
        self.wait(lambda: all(sid in self.ended_on for sid in sids), "unknown-method answers")

    def reset(self, sids):
        self.sock.sendall(b"".join(frame(3, 0, sid, struct.pack(">I", 8)) for sid in sids))

    def alive(self):
        """A PING answered: the connection was not shut."""
        want = self.ping_acks + 1
        try:
            self.sock.sendall(frame(6, 0, 0, b"alive?!!"))
        except OSError:
            return False
        deadline = time.monotonic() + 20 * SLOW
        while self.ping_acks < want and time.monotonic() < deadline:
            if not self._pump(deadline):
                return False
        return self.ping_acks >= want

    def ended(self):
        """The server shut the connection (EOF or reset), bounded."""
        deadline = time.monotonic() + 20 * SLOW
        while time.monotonic() < deadline:
            if not self._pump(deadline):
                return True
        return False

    def close(self):
        self.sock.close()


def cancelled_watches(srv, peer):
    return [l for l in srv.call_lines(WATCH) if l.get("peer") == peer and
            l.get("code") == "CANCELLED"]


def wait_cancelled(srv, peer, n):
    deadline = time.monotonic() + 20 * SLOW
    while len(cancelled_watches(srv, peer)) < n:
        if time.monotonic() > deadline:
            raise AssertionError("%d cancelled Watch lines for %s expected: %s" % (
                n, peer, srv.stderr()[-3000:]))
        time.sleep(0.02)


def abuse_lines(srv):
    return [l for l in srv.log_lines() if l.get("msg") == "closed an abusive connection"]


LIMIT = 3


def test_same_address_reconnect_is_not_shut():
    """A made LIMIT resets and left; B, from the same address and port,
    resets once within the second. The address-keyed guard added B's reset
    to A's count (LIMIT + 1) and shut B."""
    srv = h.Server("--rapid-reset-limit", str(LIMIT), "--h2-rst-limit", "0")
    srv.start()
    try:
        a = Raw(srv.port)
        sids = [1, 3, 5][:LIMIT]
        a.watch(sids)
        a.reset(sids)
        wait_cancelled(srv, a.peer, LIMIT)
        port = a.local_port
        a.close()
        b = Raw(srv.port, port)
        if b.peer != a.peer:
            raise AssertionError("B came from %s, not %s" % (b.peer, a.peer))
        b.watch([1])
        b.reset([1])
        wait_cancelled(srv, b.peer, LIMIT + 1)
        if not b.alive():
            raise AssertionError("the new connection from %s was shut for one reset: %s" % (
                b.peer, abuse_lines(srv)))
        if abuse_lines(srv):
            raise AssertionError("a close was logged: %s" % abuse_lines(srv))
        # B's own abuse is still caught: LIMIT more resets.
        sids = [3, 5, 7, 9][:LIMIT]
        b.watch(sids)
        b.reset(sids)
        if not b.ended():
            raise AssertionError("B, over the limit on its own, was not closed")
        line = srv.wait_log(lambda l: l.get("msg") == "closed an abusive connection")
        if line.get("reason") != "rapid_reset" or line.get("peer") != b.peer:
            raise AssertionError("unexpected close line %s" % line)
        b.close()
        print("  reconnect from %s: one reset served; its own flood closed" % b.peer)
    finally:
        srv.stop()
        srv.cleanup()


def test_max_age_cancels_do_not_count():
    """A has LIMIT Watch streams open when max-connection-age sends GOAWAY;
    it leaves, and the core cancels the streams (no RST_STREAM from the
    client). B, from the same address and port, resets once. Counted as
    client resets, A's cancels put B over the limit."""
    srv = h.Server("--rapid-reset-limit", str(LIMIT), "--h2-rst-limit", "0",
                   "--max-connection-age-ms", "1500")
    srv.start()
    try:
        a = Raw(srv.port)
        a.watch([1, 3, 5][:LIMIT])
        a.wait(lambda: a.goaway, "GOAWAY from max-connection-age")
        port = a.local_port
        a.close()
        wait_cancelled(srv, a.peer, LIMIT)
        b = Raw(srv.port, port)
        b.watch([1])
        b.reset([1])
        wait_cancelled(srv, b.peer, LIMIT + 1)
        if not b.alive():
            raise AssertionError("B was shut: the age-limit cancels counted: %s" % abuse_lines(srv))
        if abuse_lines(srv):
            raise AssertionError("a close was logged: %s" % abuse_lines(srv))
        b.close()
        print("  %d cancels after GOAWAY (max age) not counted" % LIMIT)
    finally:
        srv.stop()
        srv.cleanup()


def test_unknown_method_flood_counts_on_its_own_connection():
    """A (API port) and B (health port, accepted last) come from one client
    address and port, so both have the same peer text. A floods calls to an
    unknown method: A is closed, B is not. The guard that found a call's
    connection by peer text charged B, the last accepted connection with
    that text, and shut it."""
    hp = h.free_port()
    srv = h.Server("--rapid-reset-limit", str(LIMIT), "--health-listen", "127.0.0.1:%d" % hp,
                   "--metrics-listen", "127.0.0.1:0")
    srv.start()
    try:
        a = Raw(srv.port)
        if not a.alive():
            raise AssertionError("A was not served")
        b = Raw(hp, a.local_port)
        if b.peer != a.peer:
            raise AssertionError("B came from %s, not %s" % (b.peer, a.peer))
        if not b.alive():
            raise AssertionError("B was not served")
        before = abusive_closed(srv)
        # Bursts of 4 x LIMIT calls, each well inside one second (a hang
        # guard of 10 bursts, not a speed budget: one burst in a second is
        # enough).
        sid, closed = 1, False
        for _ in range(10):
            sids = list(range(sid, sid + 8 * LIMIT, 2))
            sid = sids[-1] + 2
            try:
                a.unknown(sids)
            except (AssertionError, OSError):
                closed = True
                break
        if not closed and not a.ended():
            raise AssertionError("A, flooding unknown methods, was not closed: %s" %
                                 abuse_lines(srv))
        line = srv.wait_log(lambda l: l.get("msg") == "closed an abusive connection")
        if line.get("reason") != "unknown_methods" or line.get("peer") != a.peer:
            raise AssertionError("unexpected close line %s" % line)
        if not b.alive():
            raise AssertionError("B, from the same address and port on the health port, was "
                                 "shut for A's flood: %s" % abuse_lines(srv))
        after = abusive_closed(srv)
        grew = {r: after[r] - before[r] for r in REASONS if after[r] != before[r]}
        h.expect_eq(grew, {"unknown_methods": 1.0}, "closes by reason")
        a.close()
        b.close()
        print("  unknown-method flood from %s (API port) closed; the same peer on the health "
              "port served" % a.peer)
    finally:
        srv.stop()
        srv.cleanup()


FD_LIMIT = 128


def test_reset_storm_caught_at_emfile():
    """Every descriptor of the server in use; a connection opened before
    then resets stream after stream: it is closed (the close needs no
    descriptor; the /proc scan needed one and failed at EMFILE)."""
    h2attack.raise_nofile(4 * FD_LIMIT)
    srv = h.Server("--rapid-reset-limit", str(LIMIT), "--h2-rst-limit", "0")
    srv.args = ["prlimit", "--nofile=%d:%d" % (FD_LIMIT, FD_LIMIT), "--"] + srv.args
    srv.start()
    held = []
    try:
        storm = Raw(srv.port)
        if not storm.alive():
            raise AssertionError("the storm connection was not served")
        pid = srv.proc.pid
        fd_dir = "/proc/%d/fd" % pid
        # Fill the server's table: connections until it has no descriptor left.
        deadline = time.monotonic() + 60 * SLOW
        while len(os.listdir(fd_dir)) < FD_LIMIT and time.monotonic() < deadline:
            for _ in range(16):
                c = socket.create_connection(("127.0.0.1", srv.port), timeout=10 * SLOW)
                c.sendall(PREFACE + frame(4, 0, 0))
                held.append(c)
            time.sleep(0.02)
        if len(os.listdir(fd_dir)) < FD_LIMIT:
            raise AssertionError("the server never ran out of descriptors (%d of %d)" % (
                len(os.listdir(fd_dir)), FD_LIMIT))
        sid = 1
        closed = False
        for _ in range(4 * LIMIT):
            try:
                storm.watch([sid])
            except (AssertionError, OSError):
                closed = True
                break
            storm.reset([sid])
            sid += 2
        if not closed and not storm.ended():
            raise AssertionError("a reset storm at EMFILE was not closed: %s" % abuse_lines(srv))
        line = srv.wait_log(lambda l: l.get("msg") == "closed an abusive connection")
        if line.get("reason") != "rapid_reset" or line.get("peer") != storm.peer:
            raise AssertionError("unexpected close line %s" % line)
        print("  storm closed with all %d descriptors in use" % FD_LIMIT)
        storm.close()
    finally:
        for c in held:
            c.close()
        srv.stop()
        srv.cleanup()


def test_tls_reset_flood_closed_and_named(split_hello=False):
    """Over TLS the cancels count against the connection the SSL is tied to:
    a client resetting Watch streams past the limit is closed, and the line
    names its address."""
    srv = h.Server("--rapid-reset-limit", str(LIMIT), "--h2-rst-limit", "0",
                   "--tls-cert", os.path.join(S["pki"], "server.crt"),
                   "--tls-key", os.path.join(S["pki"], "server.key"), insecure=False)
    srv.start()
    try:
        c = Raw(srv.port, tls=True, split_hello=split_hello)
        sid, closed = 1, False
        for _ in range(4 * LIMIT):
            try:
                c.watch([sid])
            except (AssertionError, OSError, ssl.SSLError):
                closed = True
                break
            c.reset([sid])
            sid += 2
        if not closed and not c.ended():
            raise AssertionError("a TLS reset flood was not closed: %s" % srv.stderr()[-2000:])
        line = srv.wait_log(lambda l: l.get("msg") == "closed an abusive connection")
        if line.get("reason") != "rapid_reset" or line.get("peer") != c.peer:
            raise AssertionError("unexpected close line %s (client %s)" % (line, c.peer))
        c.close()
        print("  tls reset flood from %s closed%s" % (
            c.peer, " (split ClientHello)" if split_hello else ""))
    finally:
        srv.stop()
        srv.cleanup()


def test_tls_split_hello_reset_flood_closed_and_named():
    """The same with the ClientHello split so that the server's first read
    has 3 bytes: the guard that tied an SSL by the first bytes read (44 at
    least) left such a connection untied, its resets never counted."""
    test_tls_reset_flood_closed_and_named(split_hello=True)


def setup():
    S["pki"] = os.path.join(tempfile.mkdtemp(prefix="product-h2g-"), "pki")
    p = subprocess.run([GEN, "--out", S["pki"]], capture_output=True, timeout=60)
    assert p.returncode == 0, "gen-dev-certs.sh failed: %s" % p.stderr.decode()


TESTS = [test_continuation_flood_plaintext, test_continuation_flood_tls,
         test_ping_flood_plaintext, test_ping_flood_tls, test_goaway_flood_tls,
         test_small_data_tls,
         test_same_address_reconnect_is_not_shut, test_max_age_cancels_do_not_count,
         test_unknown_method_flood_counts_on_its_own_connection,
         test_reset_storm_caught_at_emfile, test_tls_reset_flood_closed_and_named,
         test_tls_split_hello_reset_flood_closed_and_named]

if __name__ == "__main__":
    setup()
    h.main(TESTS)
    sys.exit(0)
