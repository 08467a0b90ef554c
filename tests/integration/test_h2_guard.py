"""The HTTP/2 frame guard (src/transport/h2_guard.c) on the real server:
a CONTINUATION flood (HEADERS without END_HEADERS, then endless
CONTINUATION frames) and a PING flood are closed, over plaintext and over
TLS (the guard counts decrypted bytes there), the abuse is logged (one warn
line with its reason) and counted (product_abusive_connections_closed_total
on the metrics port goes up by one for that reason, and for no other), a
legitimate gRPC client is served before the attack and a new one after it,
and the server stops cleanly (exit status 0 after SIGTERM: under ASan a leak
or any report at shutdown fails the case).

Each attack is bounded: at most 8 MB sent or 10 s (x SLOW)."""
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


REASONS = ("header_block", "ping_flood", "settings_flood", "empty_frames", "rst_flood",
           "zero_window", "rapid_reset", "unknown_methods", "memory")


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
        if not tls:  # a TLS read does not know its socket (docs/http2-limits.md)
            assert line.get("peer", "").startswith("ipv4:127.0.0.1:"), line
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


def setup():
    S["pki"] = os.path.join(tempfile.mkdtemp(prefix="product-h2g-"), "pki")
    p = subprocess.run([GEN, "--out", S["pki"]], capture_output=True, timeout=60)
    assert p.returncode == 0, "gen-dev-certs.sh failed: %s" % p.stderr.decode()


TESTS = [test_continuation_flood_plaintext, test_continuation_flood_tls,
         test_ping_flood_plaintext, test_ping_flood_tls]

if __name__ == "__main__":
    setup()
    h.main(TESTS)
    sys.exit(0)
