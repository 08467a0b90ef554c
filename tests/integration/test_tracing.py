"""Tracing (product-server(8) "TRACING"), checked against independent
implementations: node/otel_client.js calls the server from CLIENT spans of
the OpenTelemetry JS SDK, whose own W3C propagator writes `traceparent`;
node/otlp_receiver.js decodes the server's OTLP/HTTP export with the
OpenTelemetry JS packages' protobuf messages. The test checks the parent and
child links, trace ids, attributes, status and resource the receiver
decoded, and the call log lines' ids against them; a table of malformed
traceparents (each starts a new trace, never an error); a collector that is
down or never answers costs no call and its drops are counted; the spans of
the last calls arrive at SIGTERM, before the server exits."""

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request

import harness as h
import pgtemp
from harness import check, expect_code, expect_eq

NODE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node")
TID = "0af7651916cd43dd8448eb211c80319c"
PID = "b7ad6b7169203331"
HEX32 = re.compile(r"^[0-9a-f]{32}$")
HEX16 = re.compile(r"^[0-9a-f]{16}$")
MISSING = "00000000-0000-4000-8000-000000000000"
S = {}

# Each starts a new trace; grpcio sends only printable ASCII metadata, so the
# control-byte rows live in the unit test (tests/unit/core/test_trace_context.c).
MALFORMED = [
    "",
    "00",
    "00-%s-%s-0" % (TID, PID),
    "00-%s-%s-011" % (TID, PID),
    "00-%s-%s-01-extra" % (TID, PID),
    "00-%s0-%s-01" % (TID, PID),
    "00-%s-%s-01" % (TID[:-1], PID),
    "00-%s-%s-01" % (TID, PID[:-1]),
    "00-%s-%s-01" % (TID.upper(), PID),
    "00-%s-%s-01" % (TID, PID.upper()),
    "00-%s-%s-0A" % (TID, PID),
    "0A-%s-%s-01" % (TID, PID),
    "00-%s-%s-01" % ("0" * 32, PID),
    "00-%s-%s-01" % (TID, "0" * 16),
    "ff-%s-%s-01" % (TID, PID),
    "00_%s_%s_01" % (TID, PID),
    "00-%s-%s-0g" % (TID, PID),
    "cc-%s-%s-01x" % (TID, PID),
    "00-%s-%s" % (TID, PID),
    "00-%s-%s-01 " % (TID, PID),
]


def setup():
    node = shutil.which("node")
    check(node is not None, "node is not installed (run tools/install-deps.sh)")
    for pkg in ("@opentelemetry/otlp-transformer", "@opentelemetry/sdk-trace-base",
                "@opentelemetry/core", "@opentelemetry/api", "@grpc/grpc-js"):
        check(os.path.isdir(os.path.join(NODE_DIR, "node_modules", pkg)),
              "%s is not installed in %s (run tools/install-deps.sh)" % (pkg, NODE_DIR))
    S["node"] = node


class Receiver:
    """node/otlp_receiver.js as a child process; its lines read by a thread."""

    def __init__(self, mode="ok"):
        env = dict(os.environ, OTLP_RECEIVER_MODE=mode)
        self.proc = subprocess.Popen([S["node"], "otlp_receiver.js"], cwd=NODE_DIR, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines = []
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        first = self.wait_line(lambda l: l.startswith("listening "), "the receiver's port")
        self.port = int(first.split()[1])
        self.url = "http://127.0.0.1:%d" % self.port

    def _read(self):
        for raw in self.proc.stdout:
            with self.lock:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def wait_line(self, pred, what, timeout=30):
        deadline = time.monotonic() + timeout * h.SLOW
        while time.monotonic() < deadline:
            with self.lock:
                for l in self.lines:
                    if pred(l):
                        return l
            if self.proc.poll() is not None and not self.reader.is_alive():
                break
            time.sleep(0.02)
        raise AssertionError("receiver: no %s; its output:\n%s" % (what, "\n".join(self.lines[-20:])))

    def spans(self):
        with self.lock:
            return [json.loads(l[5:]) for l in self.lines if l.startswith("span ")]

    def requests(self):
        with self.lock:
            return sum(1 for l in self.lines if l.startswith("request "))

    def undecodable(self):
        with self.lock:
            return [l for l in self.lines if l.startswith("undecodable")]

    def stop(self):
        """Ends the receiver and reads its output to the end (again: a no-op)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.reader.join(timeout=10)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def metrics_port(srv):
    return srv.wait_log(lambda l: "metrics_port" in l)["metrics_port"]


def dropped(srv):
    url = "http://127.0.0.1:%d/metrics" % metrics_port(srv)
    with urllib.request.urlopen(url, timeout=10 * h.SLOW) as resp:
        body = resp.read().decode()
    m = re.search(r"^product_spans_dropped_total (\d+)$", body, re.M)
    check(m is not None, "no product_spans_dropped_total series:\n" + body[-2000:])
    return int(m.group(1))


def by_id(spans):
    return {s["spanId"]: s for s in spans}


def test_the_sdk_clients_trace_continues_through_the_server_to_the_store():
    rcv = Receiver()
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": rcv.url, "OTEL_SERVICE_NAME": "product-traced",
           "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=it,team=a%20b",
           "OTEL_EXPORTER_OTLP_HEADERS": "x-test-header=from-env"}
    srv = h.Server(env=env).start()
    try:
        start = srv.wait_log(lambda l: l.get("msg") == "product-server serving")
        p = subprocess.run(
            [S["node"], "otel_client.js"], cwd=NODE_DIR, capture_output=True,
            timeout=120 * h.SLOW,
            env=dict(os.environ, PRODUCT_ADDR=srv.addr, PRODUCT_TOKEN=h.make_token(srv.secret),
                     PRODUCT_PROTO_DIR=os.path.join(h.SRC, "proto"), PRODUCT_SLOW=str(h.SLOW)))
        out = p.stdout.decode()
        expect_eq(p.returncode, 0, "otel_client.js exit status (%s)" % p.stderr.decode()[-2000:])
        check("\ndone\n" in "\n" + out, "otel_client.js did not finish:\n" + out)
        calls = [json.loads(l[5:]) for l in out.splitlines() if l.startswith("call ")]
        client_spans = [json.loads(l[11:]) for l in out.splitlines() if l.startswith("clientspan ")]
        expect_eq([(c["method"], c["code"]) for c in calls],
                  [("CreateProduct", 0), ("GetProduct", 0), ("CreateProduct", 16)], "the calls made")
        expect_eq(sorted((s["traceId"], s["spanId"]) for s in client_spans),
                  sorted((c["traceId"], c["spanId"]) for c in calls), "the SDK's finished spans")
        for c in h.each(calls, "calls"):
            expect_eq(c["traceparent"], "00-%s-%s-01" % (c["traceId"], c["spanId"]),
                      "the SDK's propagator wrote traceparent")
        before_stop = len(rcv.spans())
        # SIGTERM: whatever was not sent yet is flushed before the exit.
        expect_eq(srv.stop(), 0, "server exit status after SIGTERM")
        rcv.stop()  # drain its output to EOF: an export not read yet is not an absent one
        spans = rcv.spans()
        print("spans: %d before SIGTERM, %d after" % (before_stop, len(spans)))
        expect_eq(rcv.undecodable(), [], "requests the OTel JS decoder refused")
        ids = by_id(spans)
        lines = srv.call_lines()
        for c in h.each(calls, "calls"):
            servers = [s for s in spans if s["traceId"] == c["traceId"] and s["kind"] == 2]
            expect_eq(len(servers), 1, "one server span in trace %s" % c["traceId"])
            s = servers[0]
            expect_eq(s["parentSpanId"], c["spanId"], "server span's parent is the client span")
            expect_eq(s["name"], "product.ProductService/" + c["method"], "server span name")
            expect_eq(s["attributes"], {
                "rpc.system": "grpc", "rpc.service": "product.ProductService",
                "rpc.method": c["method"], "rpc.grpc.status_code": c["code"],
                "server.port": srv.port, "client.address": "127.0.0.1"}, "server span attributes")
            expect_eq(s["status"], {"code": 0, "message": ""},
                      "status unset for OK and UNAUTHENTICATED")
            expect_eq(s["resource"], {"service.name": "product-traced",
                                      "service.version": start["version"],
                                      "deployment.environment": "it", "team": "a b"}, "resource")
            expect_eq(s["contentType"], "application/x-protobuf", "OTLP content type")
            expect_eq(s["path"], "/v1/traces", "OTLP path")
            expect_eq(s["testHeader"], "from-env", "OTEL_EXPORTER_OTLP_HEADERS sent")
            check(int(s["start"]) <= int(s["end"]), "server span ends after it starts")
            children = sorted(k["name"] for k in spans if k["parentSpanId"] == s["spanId"])
            want = {"CreateProduct": ["auth.verify_token", "store.create"],
                    "GetProduct": ["auth.verify_token", "store.get"]}[c["method"]]
            expect_eq(children, want if c["code"] == 0 else [], "child spans of " + c["method"])
            for k in spans:
                if k["parentSpanId"] == s["spanId"]:
                    expect_eq((k["traceId"], k["kind"]), (c["traceId"], 1), "child in the trace")
                    check(int(s["start"]) <= int(k["start"]) <= int(k["end"]) <= int(s["end"]),
                          "child %s lies within its server span" % k["name"])
            # The call's log line names the same trace and span.
            mine = [l for l in lines if l.get("span_id") == s["spanId"]]
            expect_eq(len(mine), 1, "one log line with span_id %s" % s["spanId"])
            expect_eq(mine[0]["trace_id"], c["traceId"], "log line trace_id")
            expect_eq(mine[0]["method"], "/product.ProductService/" + c["method"], "log method")
        store = [k for k in spans if k["name"] == "store.get"][0]
        expect_eq(store["attributes"], {"db.system": "memory"}, "store span attributes")
        # The trace the report shows: client span -> server span -> store span.
        c = calls[1]
        server = [s for s in spans if s["traceId"] == c["traceId"] and s["kind"] == 2][0]
        print("trace %s:" % c["traceId"])
        print("  client  %s %s (OTel JS SDK)" % (c["spanId"], "product.ProductService/GetProduct"))
        for k in [server] + [k for k in spans if k["parentSpanId"] == server["spanId"]]:
            print("  %-7s %s parent=%s %s %s status=%s %s" % (
                "server" if k["kind"] == 2 else "child", k["spanId"], k["parentSpanId"],
                k["name"], json.dumps(k["attributes"], sort_keys=True), k["status"]["code"],
                "%.3f ms" % ((int(k["end"]) - int(k["start"])) / 1e6)))
        print("  resource %s" % json.dumps(server["resource"], sort_keys=True))
    finally:
        srv.cleanup()
        rcv.stop()


def test_malformed_traceparents_start_new_traces_and_valid_ones_continue():
    rcv = Receiver()
    srv = h.Server(env={"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": rcv.url + "/v1/traces"}).start()
    try:
        tok = h.make_token(srv.secret)
        rows = [(v, "new") for v in MALFORMED] + [
            ("00-%s-%s-01" % (TID, PID), "child"),
            ("01-%s-%s-01" % (TID, PID), "child"),
            ("cc-%s-%s-01-a-later-version" % (TID, PID), "child"),
            ("00-%s-%s-00" % (TID, PID), "unsampled"),  # parentbased: not exported
        ]
        with h.Api(srv) as api:
            for i, (v, _) in enumerate(h.each(rows, "traceparent rows")):
                md = [("traceparent", v), ("tracestate", "vendor=x")]
                expect_code("NOT_FOUND", lambda: api.call("GetProduct", id=MISSING, token=tok,
                                                          metadata=md), "traceparent %r" % v)
                srv.wait_call_lines("GetProduct", i + 1)  # lines in call order
            # Two traceparents: neither is the parent.
            md = [("traceparent", "00-%s-%s-01" % (TID, PID)),
                  ("traceparent", "00-%s-%s-01" % ("1" * 32, PID))]
            expect_code("NOT_FOUND", lambda: api.call("GetProduct", id=MISSING, token=tok,
                                                      metadata=md), "two traceparents")
        rows.append(("two", "new"))
        expect_eq(srv.stop(), 0, "server exit status")
        rcv.stop()  # drain its output to EOF: an export not read yet is not an absent one
        lines = srv.call_lines("GetProduct")
        expect_eq(len(lines), len(rows), "one log line per call")
        spans = by_id(rcv.spans())
        for (v, kind), line in zip(rows, lines):
            check(HEX32.match(line["trace_id"]) and HEX16.match(line["span_id"]),
                  "ids in the log line for %r: %r" % (v, line))
            s = spans.get(line["span_id"])
            if kind == "unsampled":
                expect_eq(line["trace_id"], TID, "an unsampled parent's trace id is still logged")
                expect_eq(s, None, "a span whose parent was not sampled is not exported")
                continue
            check(s is not None, "no exported span for %r (log line %r)" % (v, line))
            expect_eq(s["traceId"], line["trace_id"], "span and log line agree for %r" % v)
            if kind == "new":
                check(line["trace_id"] not in (TID, "1" * 32),
                      "%r must start a new trace, got %s" % (v, line["trace_id"]))
                expect_eq((s["parentSpanId"], s["traceState"]), ("", ""),
                          "no parent (nor its tracestate) for %r" % v)
            else:
                expect_eq((line["trace_id"], s["parentSpanId"], s["traceState"]),
                          (TID, PID, "vendor=x"), "%r continues the trace" % v)
                # The child spans carry the call's tracestate too (one copy
                # shared by the call's spans, freed with the last).
                kids = [k for k in spans.values() if k["parentSpanId"] == s["spanId"]]
                expect_eq(sorted(k["name"] for k in kids), ["auth.verify_token", "store.get"],
                          "child spans for %r" % v)
                expect_eq([k["traceState"] for k in kids], ["vendor=x"] * 2,
                          "the children's tracestate for %r" % v)
    finally:
        srv.cleanup()
        rcv.stop()


def test_server_errors_mark_the_span_and_refused_calls_log_their_ids():
    rcv = Receiver()
    srv = h.Server(env={"OTEL_EXPORTER_OTLP_ENDPOINT": rcv.url}).start()
    try:
        tok = h.make_token(srv.secret)
        tp = [("traceparent", "00-%s-%s-01" % (TID, PID))]
        with h.Api(srv) as api:
            codes = [("CreateProduct", "INTERNAL", dict(token=tok, name="x", metadata=tp + [
                ("x-test-fault", "create")]))] if h.TEST_FAULTS else []
            codes += [
                ("CreateProduct", "UNAUTHENTICATED", dict(name="x", metadata=tp)),
                ("CreateProduct", "UNAUTHENTICATED", dict(name="x", token="not.a.token",
                                                          metadata=tp)),
                ("DeleteProduct", "PERMISSION_DENIED", dict(id=MISSING, token=tok, metadata=tp)),
                ("CreateProduct", "INVALID_ARGUMENT", dict(name="", token=tok, metadata=tp)),
            ]
            for method, code, kw in h.each(codes, "calls"):
                expect_code(code, lambda: api.call(method, **kw), method)
            # Unknown methods are answered outside the pipeline; a path that
            # is no /service/method names its span _OTHER.
            unknown = {"/product.ProductService/Nope": ("product.ProductService/Nope",
                                                        "product.ProductService", "Nope"),
                       "/no-method-part": ("_OTHER", "_OTHER", "_OTHER")}
            for path in unknown:
                expect_code("UNIMPLEMENTED", lambda: api.raw(path, b"", metadata=tp),
                            "unknown method " + path)
        expect_eq(srv.stop(), 0, "server exit status")
        rcv.stop()  # drain its output to EOF: an export not read yet is not an absent one
        lines = srv.call_lines()
        expect_eq(len(lines), len(codes) + len(unknown), "one log line per call")
        spans = by_id(rcv.spans())
        for line in h.each(lines, "log lines"):
            expect_eq(line["trace_id"], TID, "log line trace id (%s)" % line["code"])
            check(HEX16.match(line["span_id"]) and line["span_id"] != PID,
                  "log line span id: %r" % line)
            s = spans.get(line["span_id"])
            check(s is not None, "no span for the call of line %r" % line)
            if line["code"] == "UNIMPLEMENTED":
                name, service, method = unknown[line["method"]]
                expect_eq((s["name"], s["attributes"]["rpc.service"],
                           s["attributes"]["rpc.method"], s["attributes"]["rpc.grpc.status_code"],
                           s["status"]), (name, service, method, 12,
                                          {"code": 2, "message": "unknown method"}),
                          "the span of %s" % line["method"])
                continue
            expect_eq(s["attributes"]["rpc.grpc.status_code"],
                      {"INTERNAL": 13, "UNAUTHENTICATED": 16, "PERMISSION_DENIED": 7,
                       "INVALID_ARGUMENT": 3}[line["code"]], "status code attribute")
            if line["code"] == "INTERNAL":
                expect_eq(s["status"]["code"], 2, "INTERNAL is an ERROR span")
                check(s["status"]["message"] != "", "an ERROR span has a description")
            else:
                expect_eq(s["status"]["code"], 0, "%s leaves the status unset" % line["code"])
    finally:
        srv.cleanup()
        rcv.stop()


def test_text_log_lines_carry_the_ids_too():
    with h.Server("--log-format", "text") as srv:
        with h.Api(srv) as api:
            expect_code("UNAUTHENTICATED", lambda: api.call(
                "CreateProduct", name="x",
                metadata=[("traceparent", "00-%s-%s-01" % (TID, PID))]))
        expect_eq(srv.stop(), 0, "server exit status")
        text = [l for l in srv.stderr().splitlines() if "CreateProduct" in l]
        expect_eq(len(text), 1, "one text call line")
        check(re.search(r'\btrace_id="?%s"?(\s|$)' % TID, text[0]) is not None, "trace_id in " + text[0])
        check(re.search(r'\bspan_id="?[0-9a-f]{16}"?(\s|$)', text[0]) is not None, "span_id in " + text[0])


def store_trace(store, rcv):
    """Creates and reads one product with tracing on; returns the spans of
    the CreateProduct and GetProduct traces, by call."""
    srv = h.Server(store=store, env={"OTEL_EXPORTER_OTLP_ENDPOINT": rcv.url}).start()
    try:
        tok = h.make_token(srv.secret)
        with h.Api(srv) as api:
            p = api.create(tok, name="durable")
            expect_code("OK", lambda: api.call("GetProduct", id=p.id, token=tok))
        expect_eq(srv.stop(), 0, "server exit status")
        rcv.stop()  # drain its output to EOF: an export not read yet is not an absent one
        out = {}
        for line in h.each(srv.call_lines(), "call lines"):
            out[line["method"].rsplit("/", 1)[1]] = [
                s for s in rcv.spans() if s["traceId"] == line["trace_id"]]
        return out
    finally:
        srv.cleanup()


def child_of(spans, parent_name, name):
    parent = [s for s in spans if s["name"] == parent_name]
    expect_eq(len(parent), 1, "one %s span" % parent_name)
    kids = [s for s in spans if s["name"] == name and s["parentSpanId"] == parent[0]["spanId"]]
    check(len(kids) >= 1, "no %s under %s in %s" % (name, parent_name,
                                                     sorted(s["name"] for s in spans)))
    return kids


def test_sqlite_group_commit_wait_is_a_child_of_the_store_span():
    rcv = Receiver()
    tmp = os.path.join(tempfile.mkdtemp(prefix="product-trace-"), "p.db")
    try:
        by_call = store_trace("sqlite:" + tmp, rcv)
        kids = child_of(by_call["CreateProduct"], "store.create", "sqlite.group_commit_wait")
        expect_eq(kids[0]["status"]["code"], 0, "a committed write is no error")
        child_of(by_call["GetProduct"], "product.ProductService/GetProduct", "store.get")
    finally:
        rcv.stop()
        shutil.rmtree(os.path.dirname(tmp), ignore_errors=True)


def test_postgres_round_trips_are_children_of_the_store_span():
    if not pgtemp.find_bindir():
        h.skip_case("PostgreSQL server binaries (initdb, postgres) are not installed")
    rcv = Receiver()
    pg = pgtemp.PgTemp().start()
    try:
        by_call = store_trace(pg.create_database("traced"), rcv)
        for method, op in (("CreateProduct", "store.create"), ("GetProduct", "store.get")):
            kids = child_of(by_call[method], op, "postgres.round_trip")
            for k in h.each(kids, "round trips"):
                check(k["attributes"].get("db.statement", "") != "",
                      "a round trip names its statement: %r" % k)
    finally:
        rcv.stop()
        pg.cleanup()


def calls_that_all_answer(srv, n):
    tok = h.make_token(srv.secret)
    with h.Api(srv) as api:
        for _ in h.each(range(n), "calls"):
            expect_code("NOT_FOUND", lambda: api.call("GetProduct", id=MISSING, token=tok))


def test_a_collector_that_is_down_costs_no_call_and_drops_are_counted():
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:%d" % free_port(),
           "OTEL_BSP_MAX_QUEUE_SIZE": "8", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "4"}
    with h.Server("--metrics-listen", "127.0.0.1:0", env=env) as srv:
        # 40 calls of 3 spans each (server, token check, store): the queue
        # holds 8 and a batch 4, so at least 108 are dropped however the
        # exporter's thread was scheduled.
        calls_that_all_answer(srv, 40)
        n = dropped(srv)
        check(n >= 120 - 8 - 4, "product_spans_dropped_total is %d, want >= 108" % n)
        srv.wait_log(lambda l: l.get("msg", "").startswith("cannot export spans"))
        warnings = [l for l in srv.log_lines() if l.get("msg", "").startswith("cannot export")]
        expect_eq(len(warnings), 1, "one warning per outage, not one per batch")
        expect_eq(srv.stop(), 0, "server exit status")


def test_a_collector_that_never_answers_costs_no_call():
    rcv = Receiver(mode="hang")
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": rcv.url, "OTEL_EXPORTER_OTLP_TIMEOUT": "500",
           "OTEL_BSP_MAX_QUEUE_SIZE": "8", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "4"}
    srv = h.Server("--metrics-listen", "127.0.0.1:0", env=env).start()
    try:
        calls_that_all_answer(srv, 40)
        rcv.wait_line(lambda l: l.startswith("request "), "export request")
        n = dropped(srv)
        check(n >= 120 - 8 - 4, "product_spans_dropped_total is %d, want >= 108" % n)
        # The flush at exit is bounded: a collector that never answers does
        # not hold the server (the harness's stop has its own hang guard).
        expect_eq(srv.stop(), 0, "server exit status")
    finally:
        srv.cleanup()
        rcv.stop()


def test_the_dropped_counter_exists_from_the_start_and_always_off_exports_nothing():
    with h.Server("--metrics-listen", "127.0.0.1:0") as srv:
        expect_eq(dropped(srv), 0, "product_spans_dropped_total without tracing")
    rcv = Receiver()
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": rcv.url, "OTEL_TRACES_SAMPLER": "always_off"}
    srv = h.Server("--metrics-listen", "127.0.0.1:0", env=env).start()
    try:
        expect_eq(dropped(srv), 0, "product_spans_dropped_total at start")
        tok = h.make_token(srv.secret)
        with h.Api(srv) as api:
            expect_code("NOT_FOUND", lambda: api.call(
                "GetProduct", id=MISSING, token=tok,
                metadata=[("traceparent", "00-%s-%s-01" % (TID, PID))]))
        expect_eq(srv.stop(), 0, "server exit status")
        rcv.stop()  # drain its output to EOF: an export not read yet is not an absent one
        expect_eq(srv.call_lines("GetProduct")[0]["trace_id"], TID, "logged trace id")
        expect_eq((rcv.spans(), rcv.requests()), ([], 0), "always_off: nothing exported")
    finally:
        srv.cleanup()
        rcv.stop()



def test_calls_outside_the_pipeline_have_server_spans_too():
    """A call shed over the memory limit, a health Watch and a reflection
    stream are answered outside the interceptor pipeline: each has its
    server span all the same (one span per call, as otelgrpc does)."""
    rcv = Receiver()
    # Every process is over 1 MiB: the server sheds from its first sample on.
    srv = h.Server("--memory-limit", "1Mi", env={"OTEL_EXPORTER_OTLP_ENDPOINT": rcv.url}).start()
    refl = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
    try:
        tp = [("traceparent", "00-%s-%s-01" % (TID, PID)), ("tracestate", "vendor=x")]
        with h.Api(srv) as api:
            for _ in h.each(range(int(300 * h.SLOW)), "waits for shedding"):
                code, _, _ = h.status_of(lambda: api.call("GetProduct", id=MISSING, metadata=tp))
                if code.name == "RESOURCE_EXHAUSTED":
                    break
                time.sleep(0.1)  # the memory guard samples on its own clock
            expect_eq(code.name, "RESOURCE_EXHAUSTED", "GetProduct while shedding")
            w = api.health_watch(timeout=30 * h.SLOW, metadata=tp)
            try:
                next(w)
            finally:
                w.cancel()
            # ServerReflectionRequest{list_services: ""}, then half-close.
            rpc = api.channel.stream_stream(refl, request_serializer=h._identity,
                                            response_deserializer=h._identity)
            answers = list(rpc([b"\x3a\x00"], timeout=30 * h.SLOW, metadata=tp))
            expect_eq(len(answers), 1, "one reflection answer")
        expect_eq(srv.stop(), 0, "server exit status")
        rcv.stop()  # drain its output to EOF: an export not read yet is not an absent one
        lines = srv.call_lines()
        spans = by_id(rcv.spans())
        want = [("/product.ProductService/GetProduct", "product.ProductService", "GetProduct", 8),
                ("/grpc.health.v1.Health/Watch", "grpc.health.v1.Health", "Watch", 1),
                (refl, "grpc.reflection.v1.ServerReflection", "ServerReflectionInfo", 0)]
        for path, service, name, code in h.each(want, "calls outside the pipeline"):
            mine = [l for l in lines if l.get("method") == path and
                    (code != 8 or l.get("code") == "RESOURCE_EXHAUSTED")]
            check(mine, "a log line for %s" % path)
            s = spans.get(mine[-1]["span_id"])
            check(s is not None, "no span for %s (log line %r)" % (path, mine[-1]))
            expect_eq((s["traceId"], s["parentSpanId"], s["name"], s["kind"]),
                      (TID, PID, path[1:], 2), "the span of " + path)
            expect_eq(s["attributes"], {
                "rpc.system": "grpc", "rpc.service": service, "rpc.method": name,
                "rpc.grpc.status_code": code, "server.port": srv.port,
                "client.address": "127.0.0.1"}, "the attributes of " + path)
            expect_eq(s["status"], {"code": 0, "message": ""}, "status unset for " + path)
        shed = spans[[l for l in lines if l.get("code") == "RESOURCE_EXHAUSTED"][-1]["span_id"]]
        expect_eq(shed["traceState"], "vendor=x", "a shed call's span keeps the tracestate")
    finally:
        srv.cleanup()
        rcv.stop()


if __name__ == "__main__":
    setup()
    h.main([
        test_the_sdk_clients_trace_continues_through_the_server_to_the_store,
        test_malformed_traceparents_start_new_traces_and_valid_ones_continue,
        test_server_errors_mark_the_span_and_refused_calls_log_their_ids,
        test_text_log_lines_carry_the_ids_too,
        test_sqlite_group_commit_wait_is_a_child_of_the_store_span,
        test_postgres_round_trips_are_children_of_the_store_span,
        test_a_collector_that_is_down_costs_no_call_and_drops_are_counted,
        test_a_collector_that_never_answers_costs_no_call,
        test_the_dropped_counter_exists_from_the_start_and_always_off_exports_nothing,
        test_calls_outside_the_pipeline_have_server_spans_too,
    ])
