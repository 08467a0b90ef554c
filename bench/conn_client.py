"""New connections with one gRPC call each, for the handshake scenarios of
bench/h2load_bench.py (h2load cannot open a connection per request).

Each worker process loops until the deadline: TCP connect, TLS handshake
(ALPN h2; with resume, offering the session ticket the previous connection
received), the HTTP/2 preface and SETTINGS, one unary call (HEADERS + DATA),
reads until the call's trailers (HEADERS with END_STREAM on stream 1), then
closes. Frames are written by hand (HPACK literals, no Huffman, no table)
so that the client stays cheap; the server does all the work a real client
makes it do. The caller reads the server's CPU from /proc before and after.

A connection counts as done only when the reply had a DATA frame and the
trailers came; a resumed count says how many handshakes the server really
resumed (ssl.SSLSocket.session_reused), so a server that ignores tickets
shows up as resumed 0 %, not as a cheap handshake.
"""

import multiprocessing
import os
import socket
import ssl
import struct
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, GOAWAY = 0x0, 0x1, 0x3, 0x4, 0x7
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4


def _frame(ftype, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", stream) + payload


def _hpack_literal(name, value):
    """Literal header field without indexing, new name (RFC 7541 6.2.2);
    lengths below 127 only, which is all this client sends."""
    name, value = name.encode(), value.encode()
    assert len(name) < 127 and len(value) < 127
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


def request_bytes(scheme, authority, path, body, token=None):
    """Preface, SETTINGS, and the call on stream 1, as one write."""
    hdrs = [(":method", "POST"), (":scheme", scheme), (":path", path),
            (":authority", authority), ("content-type", "application/grpc"),
            ("te", "trailers")]
    if token:
        hdrs.append(("authorization", "Bearer " + token))
    block = b"".join(_hpack_literal(n, v) for n, v in hdrs)
    return (PREFACE + _frame(SETTINGS, 0, 0, b"") +
            _frame(HEADERS, END_HEADERS, 1, block) + _frame(DATA, END_STREAM, 1, body))


def _read_exact(sock, n, buf):
    while len(buf) < n:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


def one_call(sock, req):
    """Sends req and reads frames until stream 1 ends; True when a DATA frame
    and the trailers came."""
    sock.sendall(req)
    buf, got_data = b"", False
    for _ in range(1000):  # frames; a hang guard, the call needs a handful
        buf = _read_exact(sock, 9, buf)
        length = int.from_bytes(buf[:3], "big")
        ftype, flags, stream = buf[3], buf[4], int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
        buf = _read_exact(sock, 9 + length, buf)
        buf = buf[9 + length:]
        if ftype == SETTINGS and not flags & ACK:
            sock.sendall(_frame(SETTINGS, ACK, 0, b""))
        elif stream == 1 and ftype == DATA and length > 0:
            got_data = True
        elif stream == 1 and ftype == HEADERS and flags & END_STREAM:
            return got_data
        elif ftype in (RST_STREAM, GOAWAY):
            return False
    return False


def _context(cert):
    if not cert:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cert)
    ctx.set_alpn_protocols(["h2"])
    return ctx


def _connect_once(host, port, ctx, session, req):
    """One connection and call; returns (ok, reused, the session to offer next)."""
    with socket.create_connection((host, port), timeout=10) as raw:
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if not ctx:
            return one_call(raw, req), False, None
        with ctx.wrap_socket(raw, server_hostname=host, session=session) as sock:
            ok = one_call(sock, req)
            return ok, sock.session_reused, sock.session  # the newest ticket


def _loop(addr, cert, resume, req, more):
    """Connections while more(done + failed) holds; (done, reused, failed)."""
    host, port = addr.rsplit(":", 1)
    ctx = _context(cert)
    session, done, reused, failed = None, 0, 0, 0
    while more(done + failed):
        try:
            ok, was_reused, session = _connect_once(host, int(port), ctx,
                                                    session if resume else None, req)
            reused += ok and was_reused
            done += ok
            failed += not ok
        except (OSError, ConnectionError, ssl.SSLError):
            failed += 1
    return done, reused, failed


def _worker(addr, cert, resume, req, duration, cpus, out):
    if cpus:
        os.sched_setaffinity(0, cpus)
    start = time.monotonic()
    deadline = start + duration  # from this worker's start
    done = _loop(addr, cert, resume, req, lambda _: time.monotonic() < deadline)
    out.put(done + (time.monotonic() - start,))


def run_count(addr, cert, resume, path, body, token, n):
    """n connections one after the other, in this process."""
    req = request_bytes("https" if cert else "http", addr, path, body, token)
    return _loop(addr, cert, resume, req, lambda k: k < n)


def run(addr, cert, resume, path, body, token, duration, workers, cpus):
    """Runs the workers for duration seconds each (from their own start: a
    spawned worker takes a moment to import); returns (done, reused, failed,
    seconds the longest worker ran)."""
    req = request_bytes("https" if cert else "http", addr, path, body, token)
    # spawn, not fork: the caller has grpcio channels (and their threads)
    # open, and a fork in that state can hang in grpcio's fork handlers.
    mp = multiprocessing.get_context("spawn")
    out = mp.Queue()
    cpu_set = None
    if cpus:  # taskset's list form: 1 or 0,1 or 0-1
        cpu_set = set()
        for part in cpus.split(","):
            lo, _, hi = part.partition("-")
            cpu_set.update(range(int(lo), int(hi or lo) + 1))
    procs = [mp.Process(
        target=_worker, args=(addr, cert, resume, req, duration, cpu_set, out))
        for _ in range(workers)]
    for p in procs:
        p.start()
    totals = [0, 0, 0, 0.0]
    for _ in procs:
        got = out.get(timeout=duration + 60)
        for i in range(3):
            totals[i] += got[i]
        totals[3] = max(totals[3], got[3])
    for p in procs:
        p.join(timeout=30)
    return tuple(totals)
