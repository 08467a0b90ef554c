"""GET /metrics on --metrics-listen against the real server: the Prometheus
text parses line by line, every ProductService method x code series exists
at 0 from the start, calls of each outcome move exactly the counters
go-grpc-prometheus would move (and nothing else), histograms are cumulative
with _count == handled, other paths are 404, and the server stops cleanly."""

import http.client
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

import grpc

import harness
from harness import Server

PRODUCT_METHODS = ["CreateProduct", "GetProduct", "UpdateProduct", "DeleteProduct",
                   "ListProducts"]
GO_CODES = ["OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound",
            "AlreadyExists", "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
            "Aborted", "OutOfRange", "Unimplemented", "Internal", "Unavailable", "DataLoss",
            "Unauthenticated"]
BUCKETS = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"]
SVC = "product.ProductService"

# name{labels} value: label values are "..." with \\, \" and \n escapes.
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:%s(?:,%s)*)?\})? '
                    r'([-+]?(?:[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?|Inf|NaN))$' % (LABEL, LABEL))
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')


def metrics_server(*extra, **kw):
    return Server("--metrics-listen", "127.0.0.1:0", *extra, **kw)


def metrics_port(server):
    line = server.wait_log(lambda l: "metrics_port" in l)
    return line["metrics_port"]


def http_get(server, path, method="GET"):
    url = "http://127.0.0.1:%d%s" % (metrics_port(server), path)
    r = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(r, timeout=10 * harness.SLOW) as resp:
            return resp.status, dict(resp.headers), resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def parse(text):
    """{(name, frozenset(labels)): value}; fails on any line that is not a
    comment, a blank or a sample, and on a sample without a # TYPE."""
    samples, typed = {}, set()
    for line in text.split("\n"):
        if line == "":
            continue
        if line.startswith("#"):
            parts = line.split(" ", 3)
            assert parts[1] in ("HELP", "TYPE"), line
            if parts[1] == "TYPE":
                assert parts[3] in ("counter", "gauge", "histogram", "summary", "untyped"), line
                typed.add(parts[2])
            continue
        m = SAMPLE.match(line)
        assert m, "not a Prometheus sample line: %r" % line
        name, labels, value = m.group(1), m.group(2) or "", m.group(3)
        family = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in typed or family in typed, "sample before its # TYPE: %r" % line
        key = (name, frozenset(LABEL_RE.findall(labels)))
        assert key not in samples, "duplicate series: %r" % line
        samples[key] = float(value)
    return samples


def scrape(server):
    status, headers, body = http_get(server, "/metrics")
    assert status == 200, status
    assert headers.get("Content-Type", "").startswith("text/plain; version=0.0.4"), headers
    return parse(body)


def key(name, **labels):
    return (name, frozenset(labels.items()))


def handled_calls(m, before=None):
    """Calls counted as handled (every service), or counted since before."""
    n = sum(v for k, v in m.items() if k[0] == "grpc_server_handled_total")
    return n - (handled_calls(before) if before is not None else 0)


def scrape_when(server, done):
    """Scrapes until done(samples) holds or a bound passes, and returns the
    last scrape (the caller's asserts then say what is wrong). A call is
    counted when the server learns how it ended, just after the client has
    its status, so a scrape right after a call may come before its count."""
    deadline = time.monotonic() + 30 * harness.SLOW
    while True:
        m = scrape(server)
        if done(m) or time.monotonic() > deadline:
            return m
        time.sleep(0.02)


def unary(method, code=None, grpc_type="unary", service=SVC):
    labels = {"grpc_type": grpc_type, "grpc_service": service, "grpc_method": method}
    if code:
        labels["grpc_code"] = code
    return labels


def deltas(before, after):
    """Series whose value changed, ignoring what moves on its own (process
    metrics, latency sums and buckets: checked separately)."""
    out = {}
    for k, v in after.items():
        name = k[0]
        if name.startswith("process_") or name.endswith("_sum") or name.endswith("_bucket"):
            continue
        d = v - before.get(k, 0.0)
        if d:
            out[k] = d
    return out


def product_stub(server):
    pb, _ = harness.stubs()
    ch = harness.channel(server.addr)

    def rpc(name, req_type, resp_type):
        return ch.unary_unary("/product.ProductService/" + name,
                              request_serializer=req_type.SerializeToString,
                              response_deserializer=resp_type.FromString)
    return ch, pb, rpc


def call_code(fn, *args, **kw):
    try:
        fn(*args, timeout=10 * harness.SLOW, **kw)
        return grpc.StatusCode.OK
    except grpc.RpcError as e:
        return e.code()


# ---------------------------------------------------------------- tests ---

def test_every_product_method_and_code_series_exists_at_zero():
    with metrics_server() as s:
        m = scrape(s)
        for meth in PRODUCT_METHODS:
            for code in GO_CODES:
                assert m[key("grpc_server_handled_total", **unary(meth, code))] == 0, (meth, code)
            for name in ("grpc_server_started_total", "grpc_server_msg_received_total",
                         "grpc_server_msg_sent_total", "grpc_server_handling_seconds_count"):
                assert m[key(name, **unary(meth))] == 0, (name, meth)
            for le in BUCKETS:
                assert m[key("grpc_server_handling_seconds_bucket", le=le, **unary(meth))] == 0
        # The guard's counts of connections it could not cover or tie.
        for name in ("product_guard_uncovered_connections_total",
                     "product_guard_untied_tls_connections_total"):
            assert m[(name, frozenset())] == 0, name
        for name in ("process_resident_memory_bytes", "process_open_fds",
                     "process_start_time_seconds"):
            assert m[(name, frozenset())] > 0, name
        # CPU time is counted in clock ticks: a fast start may show 0. It
        # exists from the start and moves with work the server does.
        cpu = ("process_cpu_seconds_total", frozenset())
        assert m[cpu] >= 0, m[cpu]
        assert cpu_moves_with_work(s, m[cpu]), "process_cpu_seconds_total stayed at %s" % m[cpu]


def cpu_moves_with_work(server, start):
    """Makes the server work (bounded) until its CPU counter passes start."""
    ch, pb, rpc = product_stub(server)
    lst = rpc("ListProducts", pb.ListProductsRequest, pb.ListProductsResponse)
    deadline = time.monotonic() + 60 * harness.SLOW
    try:
        while time.monotonic() < deadline:
            for _ in range(50):
                assert call_code(lst, pb.ListProductsRequest(page_size=5)) == grpc.StatusCode.OK
            if scrape(server)[("process_cpu_seconds_total", frozenset())] > start:
                return True
        return False
    finally:
        ch.close()


def test_calls_of_each_outcome_move_exactly_the_expected_counters():
    with metrics_server() as s:
        ch, pb, rpc = product_stub(s)
        create = rpc("CreateProduct", pb.CreateProductRequest, pb.Product)
        get = rpc("GetProduct", pb.GetProductRequest, pb.Product)
        delete = ch.unary_unary("/product.ProductService/DeleteProduct",
                                request_serializer=pb.DeleteProductRequest.SerializeToString)
        user = [("authorization", "Bearer " + harness.make_token(s.secret, role="user"))]
        expired = [("authorization", "Bearer " + harness.make_token(s.secret, ttl=-3600))]
        before = scrape(s)
        made = create(pb.CreateProductRequest(name="metered", price=2.0), metadata=user,
                      timeout=10 * harness.SLOW)
        assert call_code(get, pb.GetProductRequest(id=made.id)) == grpc.StatusCode.OK
        assert call_code(get, pb.GetProductRequest(id="00000000-0000-4000-8000-000000000000")) \
            == grpc.StatusCode.NOT_FOUND
        assert call_code(create, pb.CreateProductRequest(name="x")) == \
            grpc.StatusCode.UNAUTHENTICATED
        assert call_code(create, pb.CreateProductRequest(name="x"), metadata=expired) == \
            grpc.StatusCode.UNAUTHENTICATED
        assert call_code(delete, pb.DeleteProductRequest(id=made.id), metadata=user) == \
            grpc.StatusCode.PERMISSION_DENIED
        ch.close()

        H = "grpc_server_handled_total"
        want = {
            key(H, **unary("CreateProduct", "OK")): 1,
            key(H, **unary("CreateProduct", "Unauthenticated")): 2,
            key(H, **unary("GetProduct", "OK")): 1,
            key(H, **unary("GetProduct", "NotFound")): 1,
            key(H, **unary("DeleteProduct", "PermissionDenied")): 1,
            key("grpc_server_started_total", **unary("CreateProduct")): 3,
            key("grpc_server_started_total", **unary("GetProduct")): 2,
            key("grpc_server_started_total", **unary("DeleteProduct")): 1,
            key("grpc_server_msg_received_total", **unary("CreateProduct")): 3,
            key("grpc_server_msg_received_total", **unary("GetProduct")): 2,
            key("grpc_server_msg_received_total", **unary("DeleteProduct")): 1,
            key("grpc_server_msg_sent_total", **unary("CreateProduct")): 1,
            key("grpc_server_msg_sent_total", **unary("GetProduct")): 1,
            key("grpc_server_handling_seconds_count", **unary("CreateProduct")): 3,
            key("grpc_server_handling_seconds_count", **unary("GetProduct")): 2,
            key("grpc_server_handling_seconds_count", **unary("DeleteProduct")): 1,
            key("product_auth_rejections_total", reason="no_token"): 1,
            key("product_auth_rejections_total", reason="expired"): 1,
            key("product_auth_rejections_total", reason="missing_role"): 1,
            key("product_store_operation_seconds_count", operation="create"): 1,
            key("product_store_operation_seconds_count", operation="get"): 2,
        }
        after = scrape_when(s, lambda m: deltas(before, m) == want)
        got = deltas(before, after)
        assert got == want, "\nunexpected: %s\nmissing: %s" % (
            {k: v for k, v in got.items() if want.get(k) != v},
            {k: v for k, v in want.items() if got.get(k) != v})


def test_histograms_are_cumulative_and_count_equals_handled():
    with metrics_server() as s:
        ch, pb, rpc = product_stub(s)
        lst = rpc("ListProducts", pb.ListProductsRequest, pb.ListProductsResponse)
        for _ in range(7):
            assert call_code(lst, pb.ListProductsRequest(page_size=5)) == grpc.StatusCode.OK
        assert call_code(lst, pb.ListProductsRequest(page_size=-1)) == \
            grpc.StatusCode.INVALID_ARGUMENT
        ch.close()
        lst_count = key("grpc_server_handling_seconds_count", **unary("ListProducts"))
        m = scrape_when(s, lambda m: handled_calls(m) >= 8 and m[lst_count] >= 8)
        for meth in PRODUCT_METHODS:
            handled = sum(m[key("grpc_server_handled_total", **unary(meth, c))] for c in GO_CODES)
            buckets = [m[key("grpc_server_handling_seconds_bucket", le=le, **unary(meth))]
                       for le in BUCKETS]
            assert buckets == sorted(buckets), (meth, buckets)
            count = m[key("grpc_server_handling_seconds_count", **unary(meth))]
            assert buckets[-1] == count == handled, (meth, buckets, count, handled)
        assert m[key("grpc_server_handling_seconds_count", **unary("ListProducts"))] == 8
        assert m[key("grpc_server_handling_seconds_sum", **unary("ListProducts"))] > 0
        lists = [m[key("product_store_operation_seconds_bucket", operation="list", le=le)]
                 for le in ("0.0001", "0.001", "0.01", "0.1", "1", "+Inf")]
        assert lists == sorted(lists) and lists[-1] == 7, lists


def test_parallel_calls_are_all_counted():
    with metrics_server() as s:
        ch, pb, rpc = product_stub(s)
        get = rpc("GetProduct", pb.GetProductRequest, pb.Product)
        before = scrape(s)
        failures = []

        def worker():
            for _ in range(25):
                if call_code(get, pb.GetProductRequest(id="missing")) != grpc.StatusCode.NOT_FOUND:
                    failures.append(1)

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60 * harness.SLOW)
        ch.close()
        assert not failures
        after = scrape_when(s, lambda m: handled_calls(m, before) >= 200)
        k = key("grpc_server_handled_total", **unary("GetProduct", "NotFound"))
        assert after[k] - before[k] == 200
        k = key("grpc_server_started_total", **unary("GetProduct"))
        assert after[k] - before[k] == 200


def test_health_check_and_reflection_streams_are_counted():
    with metrics_server() as s:
        _, health_pb2 = harness.stubs()
        before = scrape(s)
        with harness.channel(s.addr) as ch:
            check = ch.unary_unary("/grpc.health.v1.Health/Check",
                                   request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
                                   response_deserializer=health_pb2.HealthCheckResponse.FromString)
            check(health_pb2.HealthCheckRequest(service=""), timeout=10 * harness.SLOW)
            # Two raw reflection requests (list_services = field 7, empty string).
            refl = ch.stream_stream("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo")
            answers = list(refl(iter([b"\x3a\x00", b"\x3a\x00"]), timeout=10 * harness.SLOW))
            assert len(answers) == 2
        # The stream is counted when it ends (on the server, just after the client saw it).
        s.wait_log(lambda l: l.get("method", "").endswith("ServerReflectionInfo"))
        hc = unary("Check", service="grpc.health.v1.Health")
        rf = unary("ServerReflectionInfo", service="grpc.reflection.v1.ServerReflection",
                   grpc_type="bidi_stream")
        want = {
            key("grpc_server_started_total", **hc): 1,
            key("grpc_server_msg_received_total", **hc): 1,
            key("grpc_server_msg_sent_total", **hc): 1,
            key("grpc_server_handled_total", grpc_code="OK", **hc): 1,
            key("grpc_server_handling_seconds_count", **hc): 1,
            key("grpc_server_started_total", **rf): 1,
            key("grpc_server_msg_received_total", **rf): 2,
            key("grpc_server_msg_sent_total", **rf): 2,
            key("grpc_server_handled_total", grpc_code="OK", **rf): 1,
            key("grpc_server_handling_seconds_count", **rf): 1,
        }
        after = scrape_when(s, lambda m: deltas(before, m) == want)
        got = deltas(before, after)
        assert got == want, got


def test_recovered_fault_is_counted():
    if not harness.TEST_FAULTS:
        harness.skip_case("needs -DPRODUCT_TEST_FAULTS=ON")
    with metrics_server() as s:
        ch, pb, rpc = product_stub(s)
        get = rpc("GetProduct", pb.GetProductRequest, pb.Product)
        before = scrape(s)
        assert call_code(get, pb.GetProductRequest(id="x"), metadata=[("x-test-fault", "handler")]) \
            == grpc.StatusCode.INTERNAL
        ch.close()
        k = key("product_recovered_faults_total", **unary("GetProduct"))
        after = scrape_when(s, lambda m: handled_calls(m, before) >= 1 and m[k] - before[k] >= 1)
        assert after[k] - before[k] == 1
        k = key("grpc_server_handled_total", **unary("GetProduct", "Internal"))
        assert after[k] - before[k] == 1


def test_other_paths_are_404_and_other_methods_405():
    with metrics_server() as s:
        for path in ("/", "/metric", "/metrics/", "/metricsx", "/debug/pprof"):
            status, _, _ = http_get(s, path)
            assert status == 404, (path, status)
        status, headers, _ = http_get(s, "/metrics", method="POST")
        assert status == 405 and "GET" in headers.get("Allow", ""), (status, headers)
        status, _, body = http_get(s, "/metrics?name[]=x")
        assert status == 200 and "grpc_server_started_total" in body


def test_without_the_flag_nothing_listens_and_the_start_line_has_no_port():
    with Server() as s:
        start = s.wait_log(lambda l: l.get("msg") == "product-server serving")
        assert "metrics_port" not in start
        assert start["jwt_secret"].startswith("<redacted")
        assert "grpc_core" in start


def test_a_taken_metrics_port_refuses_to_start():
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    env = dict(os.environ, JWT_SECRET="s" * 40)
    try:
        p = subprocess.run([os.path.join(harness.BIN, "product-server"), "--insecure",
                            "--listen", "127.0.0.1:0", "--store", "memory",
                            "--metrics-listen", "127.0.0.1:%d" % port],
                           env=env, capture_output=True, timeout=30 * harness.SLOW)
    finally:
        taken.close()
    assert p.returncode == 2, (p.returncode, p.stderr)
    lines = [l for l in p.stderr.decode().splitlines() if l.strip() and not l.startswith("==")]
    assert len(lines) == 1 and "metrics" in lines[0] and str(port) in lines[0], lines


def test_stops_cleanly_while_scrapes_run():
    with metrics_server() as s:
        stop, stopping = threading.Event(), threading.Event()
        errors = []
        done = threading.Semaphore(0)

        def scraper():
            while not stop.is_set():
                try:
                    scrape(s)
                except (OSError, urllib.error.URLError, http.client.HTTPException) as e:
                    if not stopping.is_set():  # before the SIGTERM: a real failure
                        errors.append(e)
                    return  # the endpoint went away mid-scrape: expected once stopping
                except Exception as e:  # noqa: BLE001 - a bad page, or anything else
                    errors.append(e)
                    return
                done.release()

        t = threading.Thread(target=scraper, daemon=True)
        t.start()
        # Scrapes are running (one has completed) when the stop begins.
        assert done.acquire(timeout=30 * harness.SLOW), "no scrape completed: %r" % errors
        stopping.set()
        assert s.stop() == 0
        stop.set()
        t.join(30 * harness.SLOW)
        assert not t.is_alive(), "the scraper hangs after the server stopped"
        assert not errors, errors


def test_valgrind_finds_no_leak_with_metrics_and_reflection():
    if harness.SANITIZE:
        harness.skip_valgrind_under_sanitizer()
    if os.environ.get("SKIP_VALGRIND"):
        harness.skip_case("SKIP_VALGRIND is set")
    if not shutil.which("valgrind"):
        harness.skip_case("valgrind is not installed")
    s = metrics_server(valgrind=True)
    try:
        s.start(timeout=120)
        ch, pb, rpc = product_stub(s)
        get = rpc("GetProduct", pb.GetProductRequest, pb.Product)
        assert call_code(get, pb.GetProductRequest(id="nope")) == grpc.StatusCode.NOT_FOUND
        refl = ch.stream_stream("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
        assert len(list(refl(iter([b"\x3a\x00", b"\x22\x0fproduct.Product"]),
                             timeout=60))) == 2
        ch.close()
        scrape(s)
        assert http_get(s, "/nope")[0] == 404
        assert s.stop(timeout=120) == 0, s.stderr()[-3000:]
    finally:
        s.cleanup()


if __name__ == "__main__":
    harness.main([
        test_every_product_method_and_code_series_exists_at_zero,
        test_calls_of_each_outcome_move_exactly_the_expected_counters,
        test_histograms_are_cumulative_and_count_equals_handled,
        test_parallel_calls_are_all_counted,
        test_health_check_and_reflection_streams_are_counted,
        test_recovered_fault_is_counted,
        test_other_paths_are_404_and_other_methods_405,
        test_without_the_flag_nothing_listens_and_the_start_line_has_no_port,
        test_a_taken_metrics_port_refuses_to_start,
        test_stops_cleanly_while_scrapes_run,
        test_valgrind_finds_no_leak_with_metrics_and_reflection,
    ])
