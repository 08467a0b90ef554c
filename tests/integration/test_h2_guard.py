"""The HTTP/2 frame guard (src/transport/h2_guard.c) on the real server:
a CONTINUATION flood (HEADERS without END_HEADERS, then endless
CONTINUATION frames) and a PING flood are closed, over plaintext and over
TLS (the guard counts decrypted bytes there), the abuse is logged and
counted, and a legitimate client is served before and after.

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


def check(tls, name, chunk, reason, *extra):
    args = list(extra)
    if tls:
        args += ["--tls-cert", os.path.join(S["pki"], "server.crt"),
                "--tls-key", os.path.join(S["pki"], "server.key")]
    srv = h.Server(*args, insecure=not tls)
    srv.start()
    try:
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
        # A new connection of the same kind is served: its PING answered.
        sock = connect(srv, tls)
        sock.sendall(PREFACE + frame(4, 0, 0) + frame(6, 0, 0, b"12345678"))
        sock.settimeout(20 * SLOW)
        got = b""
        deadline = time.monotonic() + 20 * SLOW
        while b"\x06\x01" not in got and time.monotonic() < deadline:
            data = sock.recv(4096)
            if not data:
                break
            got += data
        sock.close()
        if b"\x00\x00\x08\x06\x01" not in got:
            raise AssertionError("%s: a new connection got no PING ACK: %r" % (name, got[:80]))
        print("  %-28s closed after %.1f MB" % (name, sent / 1048576.0))
    finally:
        srv.stop()


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
