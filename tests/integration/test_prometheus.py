"""A real Prometheus (Debian's prometheus package, installed by
tools/install-deps.sh) scrapes the server's /metrics every second and a
query returns the series the calls made; promtool lints the exposition.
Missing prometheus or promtool fails the test: it never skips."""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import harness as h
from harness import expect_eq
from test_metrics import http_get, metrics_port, metrics_server

S = {}
MISSING_ID = "00000000-0000-4000-8000-000000000000"


def tool(name):
    path = shutil.which(name)
    assert path, "%s is not installed (run tools/install-deps.sh)" % name
    return path


def setup():
    S["prometheus"] = tool("prometheus")
    S["promtool"] = tool("promtool")


def prom_get(port, path, **query):
    """(HTTP status, body) of a GET on Prometheus; (None, error) while it
    does not answer yet."""
    url = "http://127.0.0.1:%d%s" % (port, path)
    if query:
        url += "?" + urllib.parse.urlencode(query)
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:
        return None, str(e)


def poll(what, fn, timeout):
    """Calls fn until it returns something true (bounded); returns it."""
    deadline = time.monotonic() + timeout * h.SLOW
    last = None
    while time.monotonic() < deadline:
        ok, last = fn()
        if ok:
            return last
        time.sleep(0.2)
    raise AssertionError("%s: not within %ss; last: %r" % (what, timeout * h.SLOW, last))


class Prometheus:
    """prometheus as a child process scraping one target every second."""

    def __init__(self, target):
        self.tmp = tempfile.mkdtemp(prefix="product-prom-")
        self.cfg = os.path.join(self.tmp, "prometheus.yml")
        with open(self.cfg, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "scrape_configs:\n  - job_name: product\n"
                    "    static_configs:\n      - targets: ['%s']\n" % target)
        self.log_path = os.path.join(self.tmp, "prometheus.log")
        self._log = open(self.log_path, "wb")
        self.proc = None

    def _spawn(self):
        self.port = h.free_port()
        self.proc = subprocess.Popen(
            [S["prometheus"], "--config.file=" + self.cfg,
             "--storage.tsdb.path=" + os.path.join(self.tmp, "data"),
             "--web.listen-address=127.0.0.1:%d" % self.port],
            stdout=self._log, stderr=subprocess.STDOUT)

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")[-3000:]

    def start(self, timeout=60):
        """Starts it and waits (bounded) until it is ready. Prometheus cannot
        take port 0: a free port another test takes first is retried."""
        for _ in range(3):
            self._spawn()

            def ready():
                if self.proc.poll() is not None:
                    return True, None
                status, _ = prom_get(self.port, "/-/ready")
                return status == 200, status
            poll("prometheus ready", ready, timeout)
            if self.proc.poll() is None:
                return
            if "address already in use" not in self.log():
                break
        raise AssertionError("prometheus exited (%s): %s" % (self.proc.returncode, self.log()))

    def query(self, expr):
        """The instant vector of expr as [(labels, value string)]."""
        status, body = prom_get(self.port, "/api/v1/query", query=expr)
        assert status == 200, "query %s: HTTP %s %s" % (expr, status, body[:300])
        data = json.loads(body)
        expect_eq(data["status"], "success", "query status")
        return [(r["metric"], r["value"][1]) for r in data["data"]["result"]]

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                raise AssertionError("prometheus did not stop within 30s")
        self._log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def test_promtool_check_metrics_is_clean():
    with metrics_server() as srv:
        # Some traffic first, so the histograms and labelled series are not
        # all zero: the linter sees every kind of line the server writes.
        api = h.Api(srv)
        api.code("GetProduct", id=MISSING_ID)
        api.code("ListProducts")
        api.close()
        status, _, body = http_get(srv, "/metrics")
        expect_eq(status, 200, "GET /metrics")
        p = subprocess.run([S["promtool"], "check", "metrics"], input=body.encode(),
                           capture_output=True, timeout=60)
        out = (p.stdout + p.stderr).decode("utf-8", "replace")
        expect_eq((p.returncode, out), (0, ""), "promtool check metrics (exit, output)")
        expect_eq(srv.stop(), 0, "server exit status after SIGTERM")


def test_prometheus_scrapes_and_the_query_returns_the_calls():
    with metrics_server() as srv:
        target = "127.0.0.1:%d" % metrics_port(srv)
        prom = Prometheus(target)
        try:
            prom.start()
            api = h.Api(srv)
            tok = h.make_token(srv.secret, role="user")
            p = api.create(tok, name="scraped")
            for _ in range(3):
                api.call("GetProduct", id=p.id)
            for _ in range(2):
                expect_eq(api.code("GetProduct", id=MISSING_ID).name, "NOT_FOUND", "unknown id")
            api.close()

            def value(expr, want):
                def fn():
                    got = prom.query(expr)
                    return [v for _, v in got] == [want], got
                return poll("%s == %s" % (expr, want), fn, 60)

            sel = '{job="product",grpc_service="product.ProductService",grpc_method="GetProduct"'
            got = value('grpc_server_handled_total%s,grpc_code="OK"}' % sel, "3")
            labels = got[0][0]
            expect_eq((labels["instance"], labels["grpc_type"]), (target, "unary"),
                      "instance and grpc_type labels")
            value('grpc_server_handled_total%s,grpc_code="NotFound"}' % sel, "2")
            value('grpc_server_started_total%s}' % sel, "5")
            value('up{job="product"}', "1")

            # The target scrapes without errors: polled (bounded), since one
            # scrape that a loaded machine made slow reads as down until the
            # next one.
            def targets():
                status, body = prom_get(prom.port, "/api/v1/targets")
                if status != 200:
                    return False, (status, body[:200])
                active = json.loads(body)["data"]["activeTargets"]
                got = [(t["scrapeUrl"], t["health"], t["lastError"]) for t in active]
                return got == [("http://%s/metrics" % target, "up", "")], got
            poll("active targets up without errors", targets, 60)
        except AssertionError as e:
            raise AssertionError("%s\nprometheus log:\n%s" % (e, prom.log()))
        finally:
            prom.stop()
        # Scraped every second: still a clean exit (under ASan: no reports).
        expect_eq(srv.stop(), 0, "server exit status after SIGTERM")


if __name__ == "__main__":
    setup()
    h.main([test_promtool_check_metrics_is_clean,
            test_prometheus_scrapes_and_the_query_returns_the_calls])
