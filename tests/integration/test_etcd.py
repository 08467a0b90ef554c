"""Service registration in etcd (product-server(8) "Service registration (etcd)")
against a real etcd (Debian's etcd-server) on free loopback ports, checked
with grpcio calls to etcd's v3 API (stubs generated at test time from
proto/etcd/rpc.proto): the key and its 10 s lease, keep-alive, SIGTERM
(revoked before the drain), kill -9 (the lease expires), etcd restarted or
absent at start (the server keeps serving and registers again), several
endpoints, product-client --discover, and the whole life under valgrind."""

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import harness as h
from harness import expect_eq

PREFIX = "/services/product-service/"
ETCD_BIN = shutil.which("etcd")
_pb = None


def etcd_pb():
    """rpc_pb2 of the trimmed etcd proto (package etcdserverpb)."""
    global _pb
    if _pb is None:
        out = tempfile.mkdtemp(prefix="etcd-pb2-")
        subprocess.run(["protoc", "-I", os.path.join(h.SRC, "proto"), "--python_out=" + out,
                        "etcd/rpc.proto"], check=True)
        spec = importlib.util.spec_from_file_location(
            "etcd_rpc_pb2", os.path.join(out, "etcd", "rpc_pb2.py"))
        _pb = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(_pb)
    return _pb


class Etcd:
    """One etcd member on loopback, started and stopped by PID. The same
    data dir and ports survive stop()/start(), as a restarted etcd would."""

    def __init__(self, client_port=None):
        self.tmp = tempfile.mkdtemp(prefix="etcd-it-")
        self.data = os.path.join(self.tmp, "data")
        self.client_port = client_port or h.free_port()
        self.peer_port = h.free_port()
        self.url = "http://127.0.0.1:%d" % self.client_port
        self.proc = None
        self.channel = None
        self.starts = 0

    def start(self, timeout=60):
        peer = "http://127.0.0.1:%d" % self.peer_port
        self.starts += 1
        self.log = open(os.path.join(self.tmp, "etcd-%d.log" % self.starts), "wb")
        self.proc = subprocess.Popen(
            [ETCD_BIN, "--name", "it", "--data-dir", self.data,
             "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
             "--initial-cluster", "it=" + peer],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("etcd exited (%s): %s" % (self.proc.returncode,
                                                              self.log_text()[-2000:]))
            try:
                self.range(PREFIX, timeout=1)
                return self
            except Exception:  # noqa: BLE001 - not up yet
                # A fresh channel each time: a failed one waits out its
                # reconnect backoff, which would hide when etcd came up.
                self.channel.close()
                self.channel = None
                time.sleep(0.1)
        self.stop()
        raise AssertionError("etcd not ready within %ss: %s" % (timeout,
                                                               self.log_text()[-2000:]))

    def log_text(self):
        with open(self.log.name, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        if self.channel is not None:
            self.channel.close()
            self.channel = None
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if getattr(self, "log", None):
            self.log.close()

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _call(self, path, req, resp_cls, timeout):
        if self.channel is None:
            self.channel = h.channel("127.0.0.1:%d" % self.client_port)
        fn = self.channel.unary_unary(path, request_serializer=lambda m: m.SerializeToString(),
                                      response_deserializer=resp_cls.FromString)
        return fn(req, timeout=timeout)

    def range(self, prefix, timeout=30):
        """{key: KeyValue} of every key under prefix."""
        pb = etcd_pb()
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        r = self._call("/etcdserverpb.KV/Range",
                       pb.RangeRequest(key=prefix.encode(), range_end=end.encode()),
                       pb.RangeResponse, timeout)
        return {kv.key.decode(): kv for kv in r.kvs}

    def get(self, key):
        return self.range(PREFIX).get(key)

    def lease_ttl(self, lease_id):
        pb = etcd_pb()
        return self._call("/etcdserverpb.Lease/LeaseTimeToLive",
                          pb.LeaseTimeToLiveRequest(ID=lease_id, keys=True),
                          pb.LeaseTimeToLiveResponse, 30)

    def wait_key(self, key, present=True, timeout=30, pred=None):
        """Waits (bounded) until key is present (and pred(kv) holds) or
        absent; returns the KeyValue (or None) and the seconds it took."""
        t0 = time.monotonic()
        deadline = t0 + timeout * h.SLOW
        last = None
        while time.monotonic() < deadline:
            try:
                kv = self.get(key)
            except Exception as e:  # noqa: BLE001 - etcd briefly unavailable
                last = e
                time.sleep(0.05)
                continue
            if present and kv is not None and (pred is None or pred(kv)):
                return kv, time.monotonic() - t0
            if not present and kv is None:
                return None, time.monotonic() - t0
            time.sleep(0.05)
        raise AssertionError("key %s %s within %ss (last error: %s)" % (
            key, "did not appear" if present else "was still there", timeout * h.SLOW, last))


class Registered(h.Server):
    """A server that leaves with SIGTERM (so it deregisters) instead of the
    harness' kill, so that no test leaves a stale key for the next."""

    def __exit__(self, *exc):
        try:
            self.stop()
        finally:
            self.cleanup()


def server(etcd_urls, *extra, **kw):
    return Registered("--etcd-endpoints", etcd_urls, *extra, **kw)


def key_of(srv):
    return PREFIX + srv.addr


def msgs(srv):
    return [l.get("msg") for l in srv.log_lines() if "method" not in l]


class etcd_cleanup:
    def __init__(self, etcd):
        self.etcd = etcd

    def __enter__(self):
        return self.etcd

    def __exit__(self, *exc):
        self.etcd.cleanup()


# ---------------------------------------------------------------- tests ---

E = {}


def test_key_appears_with_the_address_and_a_10s_lease():
    etcd = E["etcd"]
    with server(etcd.url) as srv:
        kv, _ = etcd.wait_key(key_of(srv))
        expect_eq(kv.value.decode(), srv.addr, "value")
        if kv.lease == 0:
            raise AssertionError("the key has no lease")
        ttl = etcd.lease_ttl(kv.lease)
        expect_eq(ttl.grantedTTL, 10, "granted TTL")
        if not 0 < ttl.TTL <= 10:
            raise AssertionError("remaining TTL %d" % ttl.TTL)
        expect_eq([k.decode() for k in ttl.keys], [key_of(srv)], "keys on the lease")
        line = srv.wait_log(lambda l: l.get("msg") == "etcd: registered")
        expect_eq(line["key"], key_of(srv), "logged key")
        expect_eq(line["lease_id"], "%016x" % kv.lease, "logged lease")


def test_lease_is_kept_alive():
    """The remaining TTL goes back up (a keep-alive every third of the TTL)
    and the key outlives the TTL."""
    etcd = E["etcd"]
    with server(etcd.url) as srv:
        kv, _ = etcd.wait_key(key_of(srv))
        t0 = time.monotonic()
        low = None
        refreshed = False
        while time.monotonic() - t0 < 12 * h.SLOW:
            ttl = etcd.lease_ttl(kv.lease).TTL
            if ttl <= 0:
                raise AssertionError("lease expired")
            if low is not None and ttl > low:
                refreshed = True
            low = ttl if low is None else min(low, ttl)
            if refreshed and time.monotonic() - t0 > 10.5:
                break
            time.sleep(0.25)
        if not refreshed:
            raise AssertionError("the lease's TTL never went back up")
        now = etcd.get(key_of(srv))
        if now is None or now.lease != kv.lease:
            raise AssertionError("the key is gone or moved after the TTL: %r" % now)


def test_advertise_addr_flag_and_env_name_the_key():
    etcd = E["etcd"]
    with server(etcd.url, "--advertise-addr", "10.1.2.3:7000") as srv:
        kv, _ = etcd.wait_key(PREFIX + "10.1.2.3:7000")
        expect_eq(kv.value, b"10.1.2.3:7000", "value")
        expect_eq(etcd.get(key_of(srv)), None, "the bound address is not registered")
    etcd.wait_key(PREFIX + "10.1.2.3:7000", present=False, timeout=30)
    with Registered(env={"ETCD_ENDPOINTS": etcd.url, "ADVERTISE_ADDR": "svc.example:50051"}):
        etcd.wait_key(PREFIX + "svc.example:50051")
    etcd.wait_key(PREFIX + "svc.example:50051", present=False, timeout=30)


def test_sigterm_revokes_the_lease_before_draining():
    etcd = E["etcd"]
    srv = server(etcd.url).start()
    try:
        kv, _ = etcd.wait_key(key_of(srv))
        srv.proc.send_signal(signal.SIGTERM)
        # Bounded but generous: the order (revoke, then drain) is proven by
        # the log below and by the lease being dead, not by the clock.
        _, took = etcd.wait_key(key_of(srv), present=False, timeout=30)
        expect_eq(srv.proc.wait(timeout=60 * h.SLOW), 0, "exit status")
        m = msgs(srv)
        revoked = m.index("etcd: lease revoked, deregistered")
        draining = m.index("shutting down: draining calls in flight")
        if revoked > draining:
            raise AssertionError("revoked after the drain began: %r" % m)
        ttl = etcd.lease_ttl(kv.lease)
        if ttl.TTL > 0:
            raise AssertionError("the lease is still alive: %r" % ttl)
        print("     key gone %.3fs after SIGTERM" % took)
    finally:
        srv.cleanup()


def test_kill9_key_expires_within_the_ttl():
    etcd = E["etcd"]
    srv = server(etcd.url).start()
    try:
        etcd.wait_key(key_of(srv))
        srv.proc.kill()
        srv.proc.wait(timeout=10)
        if etcd.get(key_of(srv)) is None:
            raise AssertionError("key gone at once: nothing to show the lease expires")
        # Nobody revokes it: it goes only by expiring (10 s TTL); the bound
        # leaves etcd time on a loaded machine.
        _, took = etcd.wait_key(key_of(srv), present=False, timeout=10 + 30)
        print("     key expired %.1fs after kill -9" % took)
    finally:
        srv.cleanup()


def test_etcd_restart_registers_again_on_a_new_lease_and_serving_goes_on():
    etcd = E["etcd"]
    with server(etcd.url) as srv:
        kv, _ = etcd.wait_key(key_of(srv))
        api = h.Api(srv)
        try:
            etcd.stop()
            srv.wait_log(lambda l: l.get("msg") == "etcd: registration lost, registering again")
            # etcd is away: the server still answers.
            expect_eq(len(api.call("ListProducts").products), 0, "ListProducts while etcd is down")
            t0 = time.monotonic()
            etcd.start()
            new, _ = etcd.wait_key(key_of(srv), timeout=60, pred=lambda k: k.lease != kv.lease)
            took = time.monotonic() - t0
            expect_eq(new.value.decode(), srv.addr, "value")
            if etcd.lease_ttl(new.lease).TTL <= 0:
                raise AssertionError("new lease not alive")
            srv.wait_log(lambda l: l.get("msg") == "etcd: registered again")
            # The old lease, which etcd kept across its restart, is revoked.
            srv.wait_log(lambda l: l.get("msg") == "etcd: old lease revoked")
            if etcd.lease_ttl(kv.lease).TTL > 0:
                raise AssertionError("the old lease is still alive")
            print("     registered again %.1fs after etcd was started again" % took)
        finally:
            api.close()


def test_etcd_that_hangs_is_given_up_and_registered_again():
    """etcd stopped (SIGSTOP) for longer than the TTL: no keep-alive reply
    for a whole TTL ends the session; after SIGCONT the key comes back on a
    new lease."""
    etcd = Etcd().start()
    with etcd_cleanup(etcd), server(etcd.url) as srv:
        kv, _ = etcd.wait_key(key_of(srv))
        etcd.proc.send_signal(signal.SIGSTOP)
        try:
            line = srv.wait_log(lambda l: l.get("msg") ==
                                "etcd: registration lost, registering again", timeout=60)
            if "no keep-alive reply" not in line.get("error", ""):
                raise AssertionError("reason %r" % line)
        finally:
            etcd.proc.send_signal(signal.SIGCONT)
        etcd.wait_key(key_of(srv), timeout=60, pred=lambda k: k.lease != kv.lease)


def test_etcd_down_at_start_server_serves_and_registers_when_it_comes():
    late = Etcd()
    srv = server(late.url).start()
    try:
        api = h.Api(srv)
        expect_eq(len(api.call("ListProducts").products), 0, "ListProducts without etcd")
        api.close()
        line = srv.wait_log(lambda l: l.get("msg") == "etcd: registration failed, retrying")
        if not 500 <= line["retry_in_ms"] <= 5000:
            raise AssertionError("retry delay %r" % line["retry_in_ms"])
        t0 = time.monotonic()
        late.start()
        late.wait_key(key_of(srv), timeout=60)
        took = time.monotonic() - t0
        print("     registered %.1fs after etcd was started" % took)
        expect_eq(srv.stop(), 0, "exit status")
        late.wait_key(key_of(srv), present=False, timeout=30)
    finally:
        srv.cleanup()
        late.cleanup()


def test_second_endpoint_is_used_when_the_first_is_dead():
    etcd = E["etcd"]
    dead = "http://127.0.0.1:%d" % h.free_port()
    with server(dead + "," + etcd.url) as srv:
        etcd.wait_key(key_of(srv), timeout=60)
        line = srv.wait_log(lambda l: l.get("msg") == "etcd: registered")
        expect_eq(line["endpoint"], etcd.url, "endpoint used")


def test_discover_finds_and_calls_a_registered_server():
    client = os.path.join(h.BIN, "product-client")
    secret = "d" * 40
    etcd = Etcd().start()  # its own: only these two servers are registered
    with etcd_cleanup(etcd), server(etcd.url, secret=secret) as a, \
            server(etcd.url, secret=secret) as b:
        etcd.wait_key(key_of(a))
        etcd.wait_key(key_of(b))
        tok = h.make_token(secret, sub="disc")
        p = subprocess.run([client, "--discover", etcd.url, "--insecure", "--token", tok,
                            "create", "--name", "found"], capture_output=True, timeout=30 * h.SLOW)
        expect_eq(p.returncode, 0, "create via --discover: %s" % p.stderr.decode())
        expect_eq(json.loads(p.stdout)["name"], "found", "reply")
        # The call reached one of the two registered servers (log lines are
        # flushed within 50 ms).
        deadline = time.monotonic() + 30 * h.SLOW
        while True:
            hits = [s for s in (a, b) if s.call_lines("CreateProduct")]
            if hits or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        expect_eq(len(hits), 1, "servers that got the call")
        # Both get picked over a few runs (random choice).
        seen = set()
        for _ in range(24):
            p = subprocess.run([client, "--discover", etcd.url, "--insecure", "list"],
                               capture_output=True, timeout=30 * h.SLOW)
            expect_eq(p.returncode, 0, "list via --discover")
            seen.add(json.loads(p.stdout)["total_size"])
            if len(seen) == 2:
                break
        expect_eq(seen, {0, 1}, "total_size seen (one server has the product)")


def test_discover_without_servers_or_etcd_fails_with_unavailable():
    client = os.path.join(h.BIN, "product-client")
    empty = Etcd().start()
    try:
        for url in (empty.url, "http://127.0.0.1:%d" % h.free_port()):
            p = subprocess.run([client, "--discover", url, "--insecure", "list"],
                               capture_output=True, timeout=30 * h.SLOW)
            expect_eq(p.returncode, 1, "exit status for %s" % url)
            err = p.stderr.decode()
            if not err.startswith("error: UNAVAILABLE: ") or err.count("\n") != 1:
                raise AssertionError("stderr %r" % err)
    finally:
        empty.cleanup()
    p = subprocess.run([client, "--discover", "ftp://x:1", "--insecure", "list"],
                       capture_output=True, timeout=30 * h.SLOW)
    if p.returncode == 0:
        raise AssertionError("a bad --discover URL succeeded")


def test_registration_life_under_valgrind_is_clean():
    """Registered, etcd restarted (stream lost, registered again), SIGTERM:
    valgrind exits 0 (no memory error, no leak, threads stopped)."""
    if h.SANITIZE:
        h.skip_valgrind_under_sanitizer()
    if not shutil.which("valgrind"):
        h.skip_case("valgrind is not installed")
    etcd = E["etcd"]
    srv = server(etcd.url, valgrind=True)
    try:
        srv.start(timeout=120)
        etcd.wait_key(key_of(srv), timeout=60)
        etcd.stop()
        srv.wait_log(lambda l: l.get("msg") == "etcd: registration lost, registering again",
                     timeout=60)
        etcd.start()
        srv.wait_log(lambda l: l.get("msg") == "etcd: registered again", timeout=60)
        code = srv.stop(timeout=120)
        if code != 0:
            raise AssertionError("exit status %s under valgrind:\n%s" % (code,
                                                                       srv.stderr()[-6000:]))
        # Revoked before the exit (the log says so): gone now, not at its TTL.
        srv.wait_log(lambda l: l.get("msg") == "etcd: lease revoked, deregistered")
        etcd.wait_key(key_of(srv), present=False, timeout=2)
    finally:
        srv.cleanup()


if __name__ == "__main__":
    if not ETCD_BIN:
        h.skip("no etcd binary (Debian package etcd-server)")
    E["etcd"] = Etcd()
    try:
        E["etcd"].start()
        h.main([
            test_key_appears_with_the_address_and_a_10s_lease,
            test_lease_is_kept_alive,
            test_advertise_addr_flag_and_env_name_the_key,
            test_sigterm_revokes_the_lease_before_draining,
            test_kill9_key_expires_within_the_ttl,
            test_etcd_restart_registers_again_on_a_new_lease_and_serving_goes_on,
            test_etcd_that_hangs_is_given_up_and_registered_again,
            test_etcd_down_at_start_server_serves_and_registers_when_it_comes,
            test_second_endpoint_is_used_when_the_first_is_dead,
            test_discover_finds_and_calls_a_registered_server,
            test_discover_without_servers_or_etcd_fails_with_unavailable,
            test_registration_life_under_valgrind_is_clean,
        ])
    finally:
        E["etcd"].cleanup()
        sys.stdout.flush()
