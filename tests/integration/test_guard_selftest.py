"""Fail loud: product-server proves at start that its HTTP/2 guard is in the
path (src/guard/guard_selftest.c) and refuses to serve when it is not.

The fault point PRODUCT_FAULT_GUARD_BYPASS=1 (built with PRODUCT_TEST_FAULTS;
"plain" or "tls" for those listeners only) makes the accept hook pass
connections through untracked, as another core
build, io_uring or a statically linked TLS library would: the start-up
probe (a PING flood on a loopback connection) is then not refused, and the
server must exit non-zero with a line that says why, before any ready file,
over plaintext and over TLS. --h2-guard=off (or H2_GUARD=off) runs it
unguarded on purpose, with a warning line. Without the fault the same
servers start (the probe was refused), and the start-up line says
h2_guard on.

The fault point PRODUCT_FAULT_GUARD_NO_RECORD gives no connection but the
start-up probe a record (as when the guard's table cannot grow): the server
starts and serves them, and says so, a warn line and
product_guard_uncovered_connections_total."""
import os
import subprocess
import sys
import tempfile

import harness as h
import test_metrics as tm
from harness import SLOW

GEN = os.path.join(h.SRC, "certs", "gen-dev-certs.sh")
S = {}
BYPASS = {"PRODUCT_FAULT_GUARD_BYPASS": "1"}


def tls_args():
    return ["--tls-cert", os.path.join(S["pki"], "server.crt"),
            "--tls-key", os.path.join(S["pki"], "server.key")]


def refused(args, insecure, env):
    """Runs the server to its exit; returns its stderr. It must not serve."""
    ready = os.path.join(tempfile.mkdtemp(prefix="product-gst-"), "ready")
    full = ["--listen", "127.0.0.1:0", "--store", "memory", "--ready-file", ready] + args
    if insecure:
        full.append("--insecure")
    e = dict(BYPASS)
    e.update(env)
    e["JWT_SECRET"] = "s" * 40
    code, _, err = h.run_server_once(*full, env=e, timeout=60)
    if code == 0:
        raise AssertionError("the server exited 0 with the guard bypassed: %s" % err[-1000:])
    if os.path.exists(ready) and open(ready).read().strip():
        raise AssertionError("the ready file was written with the guard bypassed")
    if "guard is not in the" not in err or "refusing to serve unguarded" not in err:
        raise AssertionError("no line saying why: %r" % err[-1000:])
    return err


def test_bypassed_guard_refuses_plaintext():
    err = refused([], True, {})
    print("  plaintext: %s" % err.strip().splitlines()[-1][:160])


def test_bypassed_guard_refuses_tls():
    err = refused(tls_args(), False, {})
    if "TLS" not in err:
        raise AssertionError("the line does not say TLS: %r" % err[-500:])
    print("  tls: %s" % err.strip().splitlines()[-1][:160])


def test_bypassed_guard_refuses_on_the_health_port_too():
    """The TLS API port is guarded; the plaintext health port is not."""
    err = refused(["--health-listen", "127.0.0.1:0"] + tls_args(), False,
                  {"PRODUCT_FAULT_GUARD_BYPASS": "plain"})
    if "plaintext" not in err:
        raise AssertionError("the line does not name the plaintext port: %r" % err[-500:])
    print("  health port: %s" % err.strip().splitlines()[-1][:160])


def started(args, env, insecure=True):
    srv = h.Server(*args, env=env, insecure=insecure)
    try:
        srv.start()
        line = srv.wait_log(lambda l: l.get("msg") == "product-server serving")
        return srv, line
    except BaseException:
        srv.cleanup()
        raise


def test_off_flag_serves_unguarded_and_says_so():
    for how, args, env in (("flag", ["--h2-guard=off"], dict(BYPASS)),
                           ("env", [], dict(BYPASS, H2_GUARD="off"))):
        srv, line = started(args, env)
        try:
            if line.get("h2_guard") != "off":
                raise AssertionError("%s: start-up line says h2_guard=%r" % (how, line.get("h2_guard")))
            warn = [l for l in srv.log_lines() if l.get("level") == "warn" and
                    "WITHOUT the HTTP/2 guard" in l.get("msg", "")]
            if not warn:
                raise AssertionError("%s: no warning line: %s" % (how, srv.stderr()[-1000:]))
        finally:
            srv.stop()
            srv.cleanup()


def test_guard_in_the_path_starts():
    for insecure, args in ((True, []), (False, tls_args()),
                           (False, tls_args() + ["--tls-client-ca",
                                                 os.path.join(S["pki"], "ca.crt")])):
        srv, line = started(args, {}, insecure=insecure)
        try:
            if line.get("h2_guard") != "on":
                raise AssertionError("start-up line says h2_guard=%r" % line.get("h2_guard"))
            # The probe is not reported as abuse.
            if any(l.get("msg") == "closed an abusive connection" for l in srv.log_lines()):
                raise AssertionError("the start-up probe was logged as abuse")
        finally:
            srv.stop()
            srv.cleanup()


def test_uncovered_connections_are_logged_and_counted():
    srv = h.Server("--metrics-listen", "127.0.0.1:0",
                   env={"PRODUCT_FAULT_GUARD_NO_RECORD": "1"})
    srv.start()  # the probe has its record: the self-test passed
    try:
        if tm.scrape(srv).get(tm.key("product_guard_uncovered_connections_total")) != 0:
            raise AssertionError("uncovered connections counted before any")
        with h.Api(srv) as api:
            api.health_check()  # served, on a connection without a record
        line = srv.wait_log(lambda l: l.get("msg", "").startswith(
            "served connections the HTTP/2 guard could not cover"))
        if line.get("level") != "warn" or line.get("connections", 0) < 1 or \
                line.get("total", 0) < line.get("connections", 0):
            raise AssertionError("unexpected line %s" % line)
        m = tm.scrape_when(srv, lambda m: m.get(
            tm.key("product_guard_uncovered_connections_total"), 0) >= 1)
        n = m.get(tm.key("product_guard_uncovered_connections_total"), 0)
        if n < 1:
            raise AssertionError("product_guard_uncovered_connections_total is %r" % n)
        print("  %d uncovered connection(s): logged (%s) and counted" % (n, line["msg"][:60]))
        h.expect_eq(srv.stop(), 0, "exit status after SIGTERM")
    finally:
        srv.cleanup()


def test_bad_value_is_refused():
    code, _, err = h.run_server_once("--insecure", "--h2-guard=maybe",
                                     env={"JWT_SECRET": "s" * 40}, timeout=30)
    if code != 2 or "want on or off" not in err:
        raise AssertionError("--h2-guard=maybe: exit %s, %r" % (code, err[-300:]))


def setup():
    S["pki"] = os.path.join(tempfile.mkdtemp(prefix="product-gst-"), "pki")
    p = subprocess.run([GEN, "--out", S["pki"]], capture_output=True, timeout=60 * SLOW)
    assert p.returncode == 0, "gen-dev-certs.sh failed: %s" % p.stderr.decode()


TESTS = [test_bypassed_guard_refuses_plaintext, test_bypassed_guard_refuses_tls,
         test_bypassed_guard_refuses_on_the_health_port_too,
         test_off_flag_serves_unguarded_and_says_so, test_guard_in_the_path_starts,
         test_uncovered_connections_are_logged_and_counted, test_bad_value_is_refused]

if __name__ == "__main__":
    if not h.TEST_FAULTS:
        h.skip("needs the fault points (-DPRODUCT_TEST_FAULTS=ON)", build=True)
    setup()
    h.main(TESTS)
    sys.exit(0)
