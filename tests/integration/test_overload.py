"""Overload behaviour (docs/http2-limits.md): over the memory limit the
server refuses new calls with RESOURCE_EXHAUSTED, health says NOT_SERVING for
product.ProductService while "" stays SERVING, and the refusals are counted;
a client that resets calls faster than --rapid-reset-limit has its
connection closed and counted, and everyone else is still served."""

import socket
import time

import harness as h
from harness import expect_code, expect_eq
from test_metrics import key, metrics_server, scrape

SVC = "product.ProductService"


def status(api, name):
    return api.health_pb.HealthCheckResponse.ServingStatus.Value(name)


def wait_until(pred, what, timeout=10):
    deadline = time.monotonic() + timeout * h.SLOW
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


def test_limits_are_in_the_start_line():
    with h.Server("--max-concurrent-streams", "7", "--memory-limit", "3Gi") as srv:
        line = srv.wait_log(lambda l: l.get("msg") == "product-server serving")
        expect_eq(line["max_concurrent_streams"], 7, "max_concurrent_streams")
        expect_eq(line["memory_limit_bytes"], 3 << 30, "memory_limit_bytes")
        expect_eq(line["stream_window_bytes"], 65536, "stream_window_bytes")
        expect_eq(line["rapid_reset_per_s"], 200, "rapid_reset_per_s")
        expect_eq(srv.stop(), 0, "exit status")


def test_over_the_memory_limit_new_calls_are_refused_and_health_says_so():
    # Every process is over 1 MiB: the server sheds from its first sample on.
    with metrics_server("--memory-limit", "1Mi") as srv:
        with h.Api(srv) as api:
            wait_until(lambda: api.health_check(SVC).status == status(api, "NOT_SERVING"),
                       "product.ProductService NOT_SERVING")
            expect_eq(api.health_check("").status, status(api, "SERVING"), 'Check("")')
            shed = 0
            for i in range(5):
                expect_code("RESOURCE_EXHAUSTED", lambda: api.call("GetProduct", id="p%d" % i),
                            "GetProduct while shedding")
                shed += 1
            expect_code("RESOURCE_EXHAUSTED", lambda: api.call("ListProducts"), "ListProducts")
            shed += 1
            # A watcher is told too, and liveness stays.
            w = api.health_watch(SVC, timeout=10 * h.SLOW)
            try:
                expect_eq(next(w).status, status(api, "NOT_SERVING"), "Watch first message")
            finally:
                w.cancel()
            m = scrape(srv)
            expect_eq(m[key("product_shed_calls_total")], shed, "product_shed_calls_total")
            expect_eq(m[key("product_abusive_connections_closed_total", reason="rapid_reset")], 0,
                      "abusive connections")
            def shed_lines():
                return [l for l in srv.call_lines("GetProduct") if l["code"] == "RESOURCE_EXHAUSTED"]
            wait_until(lambda: len(shed_lines()) >= 5, "the shed calls' log lines")
            expect_eq(len(shed_lines()), 5, "GetProduct log lines of shed calls")
        expect_eq(srv.stop(), 0, "exit status")


def test_over_the_limit_a_client_that_never_reads_is_closed():
    # PINGs whose acks are never read pile up in the server; over the memory
    # limit the connection with the most unsent bytes is shut down. Ping
    # strikes are off, so that the core does not close it first.
    with metrics_server("--memory-limit", "1Mi", "--max-ping-strikes", "0",
                        # the frame guard would close this PING flood first
                        "--h2-ping-limit", "0") as srv:
        sock = socket.create_connection(("127.0.0.1", srv.port), timeout=1)
        sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        pings = b"".join(b"\x00\x00\x08\x06\x00\x00\x00\x00\x00" + i.to_bytes(8, "big")
                         for i in range(1000))
        closed = False
        deadline = time.monotonic() + 20 * h.SLOW
        try:
            while time.monotonic() < deadline and not closed:
                try:
                    sock.sendall(pings)
                except socket.timeout:
                    continue
                except OSError:
                    closed = True
        finally:
            sock.close()
        assert closed, "the non-reading connection was never closed"
        srv.wait_log(lambda l: l.get("msg", "").startswith("over the memory limit: closed"))
        m = scrape(srv)
        assert m[key("product_abusive_connections_closed_total", reason="memory")] >= 1, m
        expect_eq(srv.stop(), 0, "exit status")


def test_under_the_limit_nothing_is_shed():
    with metrics_server("--memory-limit", "64Gi") as srv:
        with h.Api(srv) as api:
            expect_eq(api.health_check(SVC).status, status(api, "SERVING"), "Check(service)")
            for i in range(5):
                expect_code("NOT_FOUND", lambda: api.call("GetProduct", id="p%d" % i), "GetProduct")
            expect_eq(scrape(srv)[key("product_shed_calls_total")], 0, "product_shed_calls_total")
        expect_eq(srv.stop(), 0, "exit status")


def rapid_reset(port, budget_s, path="/%s/GetProduct" % SVC, reset=True, max_streams=None):
    """HEADERS + DATA + RST_STREAM on one connection until the server closes
    it, budget_s passes or max_streams were sent (reset=False: complete
    calls, never reset); returns (streams sent, seconds until closed or
    None)."""
    import h2.config
    import h2.connection
    import h2.errors
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    # Acknowledge the server's SETTINGS first, as clients do: before, its
    # stream limit does not hold, and more than 200 streams close the
    # connection for that (unacked_settings) instead of for the resets.
    import h2.events
    deadline = time.monotonic() + 10 * h.SLOW
    settled = False
    while not settled and time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = sock.recv(65536)
        except socket.timeout:
            break
        if not data:
            return 0, 0.0
        settled = any(isinstance(e, h2.events.RemoteSettingsChanged)
                      for e in conn.receive_data(data))
    sock.sendall(conn.data_to_send())
    hdr = [(":method", "POST"), (":scheme", "http"), (":path", path),
           (":authority", "x"), ("content-type", "application/grpc"), ("te", "trailers")]
    body = b"\x00\x00\x00\x00\x03\x0a\x01x"
    t0 = time.monotonic()
    sent = 0
    sock.settimeout(0)
    try:
        while time.monotonic() - t0 < budget_s and (max_streams is None or sent < max_streams):
            for _ in range(20):
                if (not reset and conn.open_outbound_streams >=
                        conn.remote_settings.max_concurrent_streams):
                    break  # wait for answers: the server's stream limit
                sid = conn.get_next_available_stream_id()
                conn.send_headers(sid, hdr)
                if conn.local_flow_control_window(sid) >= len(body):
                    conn.send_data(sid, body, end_stream=not reset)
                elif not reset:
                    conn.end_stream(sid)
                if reset:
                    conn.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
                sent += 1
            sock.settimeout(5)
            sock.sendall(conn.data_to_send())
            sock.settimeout(0)
            try:
                while True:
                    data = sock.recv(65536)
                    if not data:
                        return sent, time.monotonic() - t0
                    conn.receive_data(data)
            except BlockingIOError:
                pass
    except OSError:  # reset by the server
        return sent, time.monotonic() - t0
    finally:
        sock.close()
    return sent, None


def test_rapid_reset_connection_is_closed_and_others_are_served():
    # The frame guard's RST_STREAM limit off: this tests the per-call count.
    with metrics_server("--rapid-reset-limit", "50", "--h2-rst-limit", "0") as srv:
        with h.Api(srv) as api:
            expect_code("NOT_FOUND", lambda: api.call("GetProduct", id="before"), "before")
            sent, closed_after = rapid_reset(srv.port, 20 * h.SLOW)
            assert closed_after is not None, "connection still open after %d resets" % sent
            line = srv.wait_log(lambda l: l.get("msg") == "closed an abusive connection")
            expect_eq(line["reason"], "rapid_reset", "reason")
            assert line["peer"].startswith("ipv4:127.0.0.1:"), line
            m = scrape(srv)
            expect_eq(m[key("product_abusive_connections_closed_total", reason="rapid_reset")], 1,
                      "abusive connections closed")
            # The legitimate client's connection was not touched.
            for i in range(10):
                expect_code("NOT_FOUND", lambda: api.call("GetProduct", id="after%d" % i), "after")
        expect_eq(srv.stop(), 0, "exit status")


def test_while_shedding_reset_calls_are_still_released_and_counted():
    # Over the memory limit from the first sample: a call reset before its
    # message must still be released at once and counted against its
    # connection, not answered (a reply to a reset stream completes only
    # when the connection closes, so each would be held until then).
    with metrics_server("--memory-limit", "1Mi", "--rapid-reset-limit", "50",
                        "--h2-rst-limit", "0") as srv:
        with h.Api(srv) as api:
            wait_until(lambda: api.health_check(SVC).status == status(api, "NOT_SERVING"),
                       "product.ProductService NOT_SERVING")
        sent, closed_after = rapid_reset(srv.port, 20 * h.SLOW)
        assert closed_after is not None, "connection still open after %d resets" % sent
        line = srv.wait_log(lambda l: l.get("msg") == "closed an abusive connection")
        expect_eq(line["reason"], "rapid_reset", "reason")
        expect_eq(scrape(srv)[key("product_shed_calls_total")], 0, "reset calls counted as shed")
        expect_eq(srv.stop(), 0, "exit status")


def test_streams_and_unknown_methods_count_too():
    # The frame guard's RST_STREAM limit off: this tests the per-call count.
    with metrics_server("--rapid-reset-limit", "50", "--h2-rst-limit", "0") as srv:
        # Calls to an unknown method count whether or not they are reset: sent
        # whole here, so that every one reaches the server (a reset one may
        # be dropped by the core before it is matched).
        for path, reason, reset in (("/grpc.health.v1.Health/Watch", "rapid_reset", True),
                                    ("/no.Such/Method", "unknown_methods", False)):
            sent, closed_after = rapid_reset(srv.port, 20 * h.SLOW, path, reset)
            assert closed_after is not None, "%s: still open after %d resets" % (path, sent)
            srv.wait_log(lambda l: l.get("msg") == "closed an abusive connection" and
                         l.get("reason") == reason)
        m = scrape(srv)
        for reason in ("rapid_reset", "unknown_methods"):
            expect_eq(m[key("product_abusive_connections_closed_total", reason=reason)], 1, reason)
        with h.Api(srv) as api:
            expect_code("NOT_FOUND", lambda: api.call("GetProduct", id="x"), "after")
        expect_eq(srv.stop(), 0, "exit status")


def test_cancels_under_the_limit_keep_the_connection():
    # Off: 1000 resets (five times the default limit) never close the
    # client, however fast it sends them (the budget is a hang guard).
    with metrics_server("--rapid-reset-limit", "0", "--h2-rst-limit", "0") as srv:
        sent, closed_after = rapid_reset(srv.port, 60 * h.SLOW, max_streams=1000)
        assert closed_after is None, "closed after %.2fs with the limit off" % closed_after
        assert sent >= 1000, "only %d resets sent within the hang guard" % sent
        with h.Api(srv) as api:
            expect_code("NOT_FOUND", lambda: api.call("GetProduct", id="x"), "after")
        expect_eq(scrape(srv)[key("product_abusive_connections_closed_total",
                                  reason="rapid_reset")], 0, "abusive connections closed")
        expect_eq(srv.stop(), 0, "exit status")


if __name__ == "__main__":
    # Checked once, before any test: a skip ends the script.
    try:
        import h2.connection  # noqa: F401
    except ImportError:
        h.skip("python3-h2 is not installed")
    h.main([
        test_limits_are_in_the_start_line,
        test_over_the_memory_limit_new_calls_are_refused_and_health_says_so,
        test_over_the_limit_a_client_that_never_reads_is_closed,
        test_under_the_limit_nothing_is_shed,
        test_rapid_reset_connection_is_closed_and_others_are_served,
        test_while_shedding_reset_calls_are_still_released_and_counted,
        test_streams_and_unknown_methods_count_too,
        test_cancels_under_the_limit_keep_the_connection,
    ])
