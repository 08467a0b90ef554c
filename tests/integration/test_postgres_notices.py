"""PostgreSQL connection start-up: a notice during it stays off stderr, and
a host that hangs in it is left for the next one the URI names.

A backend that is told to quit (pg_ctl stop -m immediate) while a client
is still starting up sends it a WARNING ("terminating connection due to
immediate shutdown command") and closes. libpq hands notices to a
processor that prints them on stderr unless one is set before the first
byte is read; every stderr line of the server must be one JSON object
(product-server(8) "Logs"). A stand-in PostgreSQL here does exactly that
on every connection, so the case is met on every run, not only when a real
shutdown happens to fall inside a connect."""

import socket
import struct
import threading

import harness as h
from harness import expect_eq

NOTICE = "terminating connection due to immediate shutdown command"


def message(kind, body):
    return kind + struct.pack("!I", len(body) + 4) + body


def notice_response():
    fields = b"".join(k + v.encode() + b"\0" for k, v in (
        (b"S", "WARNING"), (b"V", "WARNING"), (b"C", "57P01"), (b"M", NOTICE)))
    return message(b"N", fields + b"\0")


def read_exact(conn, n):
    out = b""
    while len(out) < n:
        chunk = conn.recv(n - len(out))
        if not chunk:
            raise OSError("closed")
        out += chunk
    return out


class QuittingPostgres:
    """Accepts connections; to each: refuses SSL, reads the startup
    packet, says AuthenticationOk, then the WARNING, then closes."""

    def __init__(self, notice=True):
        self.notice = notice
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.served = 0
        self.cond = threading.Condition()
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _serve(self, conn):
        conn.settimeout(10 * h.SLOW)
        while True:
            (length,) = struct.unpack("!I", read_exact(conn, 4))
            body = read_exact(conn, length - 4)
            code = body[:4]
            if code in (struct.pack("!I", 80877103), struct.pack("!I", 80877104)):
                conn.sendall(b"N")  # SSLRequest, GSSENCRequest: refused
                continue
            if code != struct.pack("!I", 196608):  # protocol 3.0 StartupMessage
                return False
            break
        conn.sendall(message(b"R", struct.pack("!I", 0)) +
                     (notice_response() if self.notice else b""))
        return True

    def _run(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            served = False
            try:
                served = self._serve(conn)
            except OSError:
                pass
            finally:
                conn.close()
            if served:  # the whole start-up, up to the WARNING, was sent
                with self.cond:
                    self.served += 1
                    self.cond.notify_all()

    def wait_served(self, n, timeout):
        with self.cond:
            ok = self.cond.wait_for(lambda: self.served >= n, timeout)
        assert ok, "only %d connections reached the stand-in PostgreSQL" % self.served

    def close(self):
        self.stopping = True
        self.thread.join(30)
        self.sock.close()


def test_a_notice_in_start_up_is_not_printed_on_stderr():
    pg = QuittingPostgres()
    srv = h.Server(store="postgres://app@127.0.0.1:%d/products?sslmode=prefer&gssencmode=disable"
                   % pg.port)
    try:
        srv.start()
        # The probe connects one connection at a time: once the third has
        # been served, the first two have been read to their end by libpq.
        pg.wait_served(3, 60 * h.SLOW)
        expect_eq(srv.stop(), 0, "exit status")
        lines = srv.log_lines()  # every line is JSON, or this raises
        assert lines, "no log lines at all"
        assert NOTICE not in srv.stderr(), srv.stderr()[-2000:]
    finally:
        srv.cleanup()
        pg.close()


def test_a_hung_first_host_fails_over_to_the_next():
    """Two hosts, the first one accepting and never answering: libpq gives
    it connect_timeout (2 s) and goes on to the second, as psql would.
    (With several hosts the server keeps libpq's own connect, which has
    that failover: its notices in start-up are the one case left to
    libpq's printer, so the stand-in sends none here; docs/postgres.md.)"""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)  # never accepted: the handshake completes, nothing answers
    pg = QuittingPostgres(notice=False)
    srv = h.Server(store="postgres://app@127.0.0.1:%d,127.0.0.1:%d/products"
                         "?sslmode=disable&gssencmode=disable&connect_timeout=2"
                   % (silent.getsockname()[1], pg.port))
    try:
        srv.start()
        pg.wait_served(1, 60 * h.SLOW)
        expect_eq(srv.stop(), 0, "exit status")
        srv.log_lines()  # every line is JSON, or this raises
    finally:
        srv.cleanup()
        pg.close()
        silent.close()


if __name__ == "__main__":
    h.main([test_a_notice_in_start_up_is_not_printed_on_stderr,
            test_a_hung_first_host_fails_over_to_the_next])
