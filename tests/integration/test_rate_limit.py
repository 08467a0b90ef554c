"""Rate limits and failed-authentication throttling against the real server
over real sockets (grpcio here, @grpc/grpc-js in node/grpcjs_rate_limit.js):
a burst beyond a limit gets RESOURCE_EXHAUSTED with grpc-retry-pushback-ms and
a google.rpc.Status + RetryInfo in grpc-status-details-bin (decoded with the
repo's own protos), and honouring the advertised wait lets the next call
through; callers do not share buckets; a throttled address still gets public
calls and its already-verified tokens served, and forged tokens beyond the
budget are refused without verification (the bad_signature counter stays
put); metrics, log lines, the start-up line, `off`, and bad specs (exit 2).

Rates are low (one token per several seconds) so that a loaded machine
cannot refill a bucket between the calls of a burst; waits are the server's
own advertised delay, never a timing budget."""

import importlib.util
import json
import math
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request

import grpc

import harness as h
from harness import Server, check, expect_eq

NODE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node")
JS_CLIENT = os.path.join(NODE_DIR, "grpcjs_rate_limit.js")
BURST_GUARD = 60  # calls at most before the limit must have answered
_rich = None


def rich_pb2():
    """(status_pb2, retry_info_pb2) generated from proto/google/rpc/."""
    global _rich
    if _rich is None:
        out = tempfile.mkdtemp(prefix="rich-pb2-")
        subprocess.run(["protoc", "-I", os.path.join(h.SRC, "proto"), "-I", "/usr/include",
                        "--python_out=" + out, "google/rpc/status.proto",
                        "google/rpc/retry_info.proto"], check=True)
        mods = []
        for name in ("status_pb2", "retry_info_pb2"):
            spec = importlib.util.spec_from_file_location(
                name, os.path.join(out, "google", "rpc", name + ".py"))
            m = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(m)
            mods.append(m)
        _rich = tuple(mods)
    return _rich


def trailers_of(err):
    return {k: v for k, v in (err.trailing_metadata() or ())}


def decode_guidance(err):
    """Checks the two trailers of a rate-limited call agree with each other
    and with the status; returns the wait in ms."""
    status_pb2, retry_pb2 = rich_pb2()
    expect_eq(err.code(), grpc.StatusCode.RESOURCE_EXHAUSTED, "code")
    t = trailers_of(err)
    assert "grpc-retry-pushback-ms" in t, "no pushback trailer: %r" % (t,)
    assert "grpc-status-details-bin" in t, "no status details: %r" % (t,)
    pushback = int(t["grpc-retry-pushback-ms"])
    assert pushback >= 1, pushback
    st = status_pb2.Status.FromString(t["grpc-status-details-bin"])
    expect_eq(st.code, grpc.StatusCode.RESOURCE_EXHAUSTED.value[0], "google.rpc.Status.code")
    expect_eq(st.message, err.details(), "google.rpc.Status.message")
    expect_eq(len(st.details), 1, "one detail")
    expect_eq(st.details[0].type_url, "type.googleapis.com/google.rpc.RetryInfo", "type_url")
    info = retry_pb2.RetryInfo.FromString(st.details[0].value)
    delay_ms = info.retry_delay.seconds * 1000 + info.retry_delay.nanos // 1000000
    expect_eq(info.retry_delay.nanos % 1000000, 0, "whole milliseconds")
    expect_eq(delay_ms, pushback, "RetryInfo.retry_delay == grpc-retry-pushback-ms")
    m = re.search(r"retry in (\d+) ms$", err.details())
    assert m, err.details()
    expect_eq(int(m.group(1)), pushback, "the wait in the message")
    return pushback


def call_until_refused(fn):
    """Calls fn() until it raises RESOURCE_EXHAUSTED (bounded); returns
    (number of calls that were not refused, the error)."""
    for served in range(BURST_GUARD):
        try:
            fn()
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                return served, e
    raise AssertionError("no RESOURCE_EXHAUSTED after %d calls" % BURST_GUARD)


def expect_burst(fn, burst, rate, what):
    """Calls fn() until refused (call_until_refused) and checks how many
    were served: the burst, plus what the bucket refilled (rate a second)
    while the calls ran, however slow the machine. Returns the error."""
    started = time.monotonic()
    served, err = call_until_refused(fn)
    refilled = math.ceil((time.monotonic() - started) * rate)
    check(burst <= served <= burst + refilled, "%s: %d served, want %d (+%d refilled)" % (
        what, served, burst, refilled))
    return err


def get_nothing(api, token=None):
    """A read that reaches the store (NOT_FOUND) counts as served."""
    try:
        api.call("GetProduct", token=token, id="no-such-product")
    except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.NOT_FOUND:
            raise


def scrape(srv):
    port = srv.wait_log(lambda l: "metrics_port" in l)["metrics_port"]
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                timeout=10 * h.SLOW) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        m = re.match(r'^(product_rate_limited_total|product_auth_rejections_total)'
                     r'\{(?:limit|reason)="([a-z_]+)"\} (\d+)$', line)
        if m:
            out[(m.group(1), m.group(2))] = int(m.group(3))
    return out


def start_line(srv):
    return srv.wait_log(lambda l: l.get("msg") == "product-server serving")


def test_defaults_on_the_start_line_and_series_at_zero():
    with Server("--metrics-listen", "127.0.0.1:0") as srv:
        line = start_line(srv)
        expect_eq(line.get("rate_limit"), "off", "rate_limit")
        expect_eq(line.get("auth_failure_limit"), "10/s:100", "auth_failure_limit")
        expect_eq(line.get("rate_limit_keys"), 100000, "rate_limit_keys")
        m = scrape(srv)
        for limit in ("read", "write", "auth_failure"):
            expect_eq(m.get(("product_rate_limited_total", limit)), 0, limit + " series")


def test_read_burst_gets_guidance_and_the_advertised_wait_lets_the_next_call_through():
    with Server("--rate-limit", "read=0.2/s:3", "--auth-failure-limit", "off",
                "--metrics-listen", "127.0.0.1:0") as srv, h.Api(srv) as api:
        line = start_line(srv)
        expect_eq(line.get("rate_limit"), "read=0.2/s:3", "rate_limit on the start line")
        err = expect_burst(lambda: get_nothing(api), 3, 0.2, "calls before the read limit")
        assert err.details().startswith("rate limit exceeded for read; retry in "), err.details()
        wait = decode_guidance(err)
        assert wait <= 5000, "one token at 0.2/s is back within 5000 ms, not %d" % wait
        time.sleep(wait / 1000.0)
        get_nothing(api)  # honoured: served
        # The refused call's log line and counter.
        refused = srv.wait_log(lambda l: l.get("code") == "RESOURCE_EXHAUSTED")
        expect_eq(refused.get("limit"), "read", "limit field")
        assert refused["method"].endswith("/GetProduct"), refused
        expect_eq(scrape(srv)[("product_rate_limited_total", "read")], 1, "read counter")
        # Writes are another class, and health is never limited.
        api.create(h.make_token(srv.secret, sub="w"))
        for _ in range(10):
            api.health_check()
        # No other status carries details: a NOT_FOUND, an UNAUTHENTICATED.
        api2_err = h.status_of(lambda: api.call("DeleteProduct", id="x"))
        expect_eq(api2_err[0], grpc.StatusCode.UNAUTHENTICATED, "no token")
        try:
            api.call("UpdateProduct", id="x", token="not.a.token")
        except grpc.RpcError as e:
            expect_eq(e.code(), grpc.StatusCode.UNAUTHENTICATED, "bad token")
            assert "grpc-status-details-bin" not in trailers_of(e), trailers_of(e)
            assert "grpc-retry-pushback-ms" not in trailers_of(e), trailers_of(e)
        expect_eq(srv.stop(), 0, "server exit status (under ASan: no leak, no error)")


def test_two_callers_do_not_share_a_bucket():
    with Server("--rate-limit", "write=0.001/s:2", "--auth-failure-limit", "off") as srv, \
            h.Api(srv) as api:
        alice = h.make_token(srv.secret, sub="alice")
        bob = h.make_token(srv.secret, sub="bob")
        served, err = call_until_refused(lambda: api.create(alice))
        expect_eq(served, 2, "alice's creates before the write limit")
        assert err.details().startswith("rate limit exceeded for write"), err.details()
        decode_guidance(err)
        # bob has his own, full bucket; reads are not limited at all.
        api.create(bob)
        api.create(bob)
        get_nothing(api, token=alice)
        refused = srv.wait_log(lambda l: l.get("code") == "RESOURCE_EXHAUSTED")
        expect_eq((refused.get("limit"), refused.get("sub")), ("write", "alice"),
                  "the refused call's limit and caller")
        assert refused["method"].endswith("/CreateProduct"), refused


def test_a_throttled_address_keeps_public_calls_and_verified_tokens():
    with Server("--auth-failure-limit", "0.001/s:3", "--metrics-listen", "127.0.0.1:0") as srv, \
            h.Api(srv) as api:
        known = h.make_token(srv.secret, sub="known-user")
        fresh = h.make_token(srv.secret, sub="fresh-user")
        forged = h.make_token("f" * 48, sub="known-user")
        api.create(known)  # verified once: the server holds it now
        for i in range(3):
            code = h.status_of(lambda: api.call("ListProducts", token=forged))[0]
            # Public method: a bad token is ignored, not a failed authentication.
            expect_eq(code, grpc.StatusCode.OK, "public call with a bad token")
        for i in range(3):
            code = h.status_of(lambda: api.create(forged))[0]
            expect_eq(code, grpc.StatusCode.UNAUTHENTICATED, "forged token #%d" % i)
        before = scrape(srv)
        expect_eq(before[("product_auth_rejections_total", "bad_signature")], 3, "verified 3")
        # The budget is spent: forged tokens are refused before verification.
        for i in range(20):
            try:
                api.create(forged)
                raise AssertionError("a forged token was served")
            except grpc.RpcError as e:
                expect_eq(e.code(), grpc.StatusCode.RESOURCE_EXHAUSTED, "forged #%d" % i)
                assert e.details().startswith("too many failed authentications; retry in "), \
                    e.details()
                if i == 0:
                    decode_guidance(e)
        after = scrape(srv)
        expect_eq(after[("product_auth_rejections_total", "bad_signature")], 3,
                  "no verification ran for the throttled forged tokens")
        expect_eq(after[("product_rate_limited_total", "auth_failure")], 20, "counted")
        # Still served from the same address: a public call without a token,
        # and a token the server verified before the flood.
        get_nothing(api)
        api.create(known)
        # A valid token never seen counts as new while the address is out of
        # budget (the server cannot tell it from a forged one without an HMAC).
        err = h.status_of(lambda: api.create(fresh))
        expect_eq(err[0], grpc.StatusCode.RESOURCE_EXHAUSTED, "an unseen valid token")
        throttled = lambda: [l for l in srv.call_lines("CreateProduct")
                             if l.get("limit") == "auth_failure"]
        srv.wait_log(lambda l: len(throttled()) >= 21)  # flushed within 50 ms
        lines = throttled()
        expect_eq(len(lines), 21, "log lines with limit auth_failure")
        assert all(l["code"] == "RESOURCE_EXHAUSTED" and "auth_error" not in l for l in lines)
        expect_eq(srv.stop(), 0, "server exit status (under ASan: no leak, no error)")


def h2_unary(port, path, body, streams=1, timeout=20):
    """Sends `streams` unary calls in turn on one raw HTTP/2 connection (h2)
    and returns, for each, the header blocks the server sent (each a list of
    (name, value) in wire order, with whether it ended the stream), the DATA
    bytes and whether the stream was reset."""
    import socket

    import h2.config
    import h2.connection
    import h2.events
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout * h.SLOW)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True,
                                                                header_encoding="utf-8"))
    conn.initiate_connection()
    frame = b"\x00" + len(body).to_bytes(4, "big") + body
    hdr = [(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "x"),
           ("content-type", "application/grpc"), ("te", "trailers")]
    out = []
    try:
        for _ in range(streams):
            sid = conn.get_next_available_stream_id()
            conn.send_headers(sid, hdr)
            conn.send_data(sid, frame, end_stream=True)
            sock.sendall(conn.data_to_send())
            got = {"blocks": [], "data": b"", "reset": False}
            done = False
            for _ in range(1000):  # hang guard: each recv waits at most the timeout
                data = sock.recv(65536)
                assert data, "the server closed the connection"
                for ev in conn.receive_data(data):
                    if getattr(ev, "stream_id", None) != sid:
                        continue
                    if isinstance(ev, (h2.events.ResponseReceived, h2.events.TrailersReceived)):
                        got["blocks"].append((list(ev.headers), ev.stream_ended is not None))
                    elif isinstance(ev, h2.events.DataReceived):
                        got["data"] += ev.data
                        conn.acknowledge_received_data(ev.flow_controlled_length, sid)
                    elif isinstance(ev, h2.events.StreamReset):
                        got["reset"] = done = True
                    elif isinstance(ev, h2.events.StreamEnded):
                        done = True
                sock.sendall(conn.data_to_send())
                if done:
                    break
            assert done, "stream %d never ended" % sid
            out.append(got)
    finally:
        sock.close()
    return out


def test_refusals_are_one_trailers_only_block_with_one_message():
    """On the wire, a non-OK answer with or without guidance is one HEADERS
    block that ends the stream (trailers-only, no DATA, no RST_STREAM), with
    exactly one grpc-status and one grpc-message (the server sends the
    message as a trailer of its own: it must not appear twice, nor be lost)
    and, for a rate limit only, one of each guidance trailer."""
    pb, _ = h.stubs()
    body = pb.GetProductRequest(id="no-such-product").SerializeToString()
    with Server("--rate-limit", "read=0.001/s:1", "--auth-failure-limit", "off") as srv:
        served, refused = h2_unary(srv.port, "/product.ProductService/GetProduct", body, 2)
        for what, got, status, msg in (
                ("NOT_FOUND", served, "5", "no product with this id"),
                ("RESOURCE_EXHAUSTED", refused, "8", None)):
            expect_eq((len(got["blocks"]), got["blocks"][0][1], got["data"], got["reset"]),
                      (1, True, b"", False), what + ": one block ending the stream, no DATA")
            names = [k for k, _ in got["blocks"][0][0]]
            md = dict(got["blocks"][0][0])
            for name in (":status", "content-type", "grpc-status", "grpc-message"):
                expect_eq(names.count(name), 1, "%s: %s headers" % (what, name))
            expect_eq(md["grpc-status"], status, what + ": grpc-status")
            if msg is None:
                m = re.fullmatch(r"rate limit exceeded for read; retry in (\d+) ms",
                                 md["grpc-message"])
                assert m, md["grpc-message"]
                expect_eq(names.count("grpc-retry-pushback-ms"), 1, "pushback trailers")
                expect_eq(md["grpc-retry-pushback-ms"], m.group(1), "pushback == message")
                expect_eq(names.count("grpc-status-details-bin"), 1, "details trailers")
            else:
                expect_eq(md["grpc-message"], msg, what + ": grpc-message")
                assert "grpc-retry-pushback-ms" not in md and \
                    "grpc-status-details-bin" not in md, md
        expect_eq(srv.stop(), 0, "server exit status (under ASan: no leak, no error)")


def test_limits_off():
    with Server("--rate-limit", "off", "--auth-failure-limit", "off") as srv, \
            h.Api(srv) as api:
        line = start_line(srv)
        expect_eq((line.get("rate_limit"), line.get("auth_failure_limit")), ("off", "off"),
                  "start line")
        forged = h.make_token("f" * 48)
        for i in range(150):  # beyond the default budget of 100
            expect_eq(h.status_of(lambda: api.create(forged))[0],
                      grpc.StatusCode.UNAUTHENTICATED, "forged #%d" % i)
    with Server(env={"RATE_LIMIT": "off", "AUTH_FAILURE_LIMIT": "off"}) as srv:
        line = start_line(srv)
        expect_eq((line.get("rate_limit"), line.get("auth_failure_limit")), ("off", "off"),
                  "start line (environment)")


def test_bad_specs_exit_2_naming_the_part():
    cases = [
        (["--rate-limit", "read=10/s,wirte=5/s"], "wirte"),
        (["--rate-limit", "read=0/s"], "read=0/s"),
        (["--rate-limit", "read=-1/s"], "read=-1/s"),
        (["--rate-limit", "write=ten/s"], "ten"),
        (["--rate-limit", "read=5/s:0"], "read=5/s:0"),
        (["--auth-failure-limit", "0/s"], "0/s"),
        (["--auth-failure-limit", "5/m"], "5/m"),
        (["--rate-limit-keys", "0"], "--rate-limit-keys"),
    ]
    env = {"JWT_SECRET": "s" * 40}
    for args, part in cases:
        rc, out, err = h.run_server_once("--insecure", "--store", "memory", *args, env=env)
        expect_eq(rc, 2, "exit status for %s" % args)
        assert part in err, "%s: %r does not name %r" % (args, err, part)
    rc, _, err = h.run_server_once("--insecure", env=dict(env, RATE_LIMIT="read=1/x"))
    expect_eq(rc, 2, "RATE_LIMIT=read=1/x")
    assert "RATE_LIMIT" in err and "read=1/x" in err, err


def test_grpcjs_sees_the_same_guidance():
    node = shutil.which("node")
    assert node, "node is not installed (run tools/install-deps.sh)"
    for pkg in ("@grpc/grpc-js", "@grpc/proto-loader"):
        assert os.path.isdir(os.path.join(NODE_DIR, "node_modules", pkg)), (
            "%s is not installed in %s (run tools/install-deps.sh)" % (pkg, NODE_DIR))
    with Server("--rate-limit", "read=0.2/s:2,write=0.001/s:2",
                "--auth-failure-limit", "0.001/s:2") as srv:
        env = dict(os.environ)
        env.update({
            "PRODUCT_ADDR": srv.addr,
            "PRODUCT_PROTO_DIR": os.path.join(h.SRC, "proto"),
            "PRODUCT_FORGED_TOKEN": h.make_token("f" * 48, sub="js"),
            "PRODUCT_ALICE_TOKEN": h.make_token(srv.secret, sub="js-alice"),
            "PRODUCT_BOB_TOKEN": h.make_token(srv.secret, sub="js-bob"),
            "PRODUCT_SLOW": str(h.SLOW),
        })
        p = subprocess.run([node, JS_CLIENT], env=env, cwd=NODE_DIR, capture_output=True,
                           timeout=180 * h.SLOW)
        out = p.stdout.decode("utf-8", "replace")
        print(out, end="")
        if p.stderr:
            print(p.stderr.decode("utf-8", "replace")[-3000:], end="")
        with open(JS_CLIENT) as f:
            checks = len(re.findall(r"^check\(", f.read(), re.M))
        m = re.search(r"^(\d+) passed, (\d+) failed$", out, re.M)
        assert m, "no summary from the grpc-js client (exit %d)" % p.returncode
        expect_eq((int(m.group(1)), int(m.group(2))), (checks, 0), "grpc-js passed/failed")
        expect_eq(p.returncode, 0, "grpc-js client exit status")


if __name__ == "__main__":
    h.main([
        test_defaults_on_the_start_line_and_series_at_zero,
        test_read_burst_gets_guidance_and_the_advertised_wait_lets_the_next_call_through,
        test_two_callers_do_not_share_a_bucket,
        test_a_throttled_address_keeps_public_calls_and_verified_tokens,
        test_refusals_are_one_trailers_only_block_with_one_message,
        test_limits_off,
        test_bad_specs_exit_2_naming_the_part,
        test_grpcjs_sees_the_same_guidance,
    ])
