#!/usr/bin/python3
"""h2load benchmark of product-server, optionally against peer servers.

For each round and each server (order alternates between rounds): start the
server on loopback, wait until it answers a health check, seed products, then
for each scenario check the gRPC status with one real call carrying the very
bytes h2load will send (h2load sees HTTP 200, never grpc-status), warm up,
and measure with h2load: req/s, latency, server CPU per call (utime+stime
from /proc/PID/stat before and after) and peak RSS (VmHWM, reset per
scenario). Medians over rounds; with peers, per-round ratios ours/peer.

Every server is started with LISTEN_ADDR, PORT, JWT_SECRET, READY_FILE and
INSECURE=1 in its environment. A key-set server (--keys-peer, or --keys for
ours) gets JWT_KEYS_FILE instead of JWT_SECRET: a fresh JWK Set of 3 oct keys
(kids k1..k3, 32 random bytes each) per start, and its tokens carry the kid
of the last signing key, k3. Tokens are minted with PyJWT (compact headers,
as clients send them). Placeholders in a command: {port} {addr}
{ready} {tmpdir}. A server that writes no ready file is found by polling its
health service on the chosen port. Give the binary itself (or a wrapper that
execs it): CPU and RSS are read from the PID started here.

--tls on runs every server over TLS instead: one self-signed certificate is
generated per invocation (openssl; ECDSA P-256, or RSA 2048 with
--tls-key rsa2048) and given to every server as TLS_CERT_FILE/TLS_KEY_FILE,
without INSECURE (and without --insecure in its command); h2load speaks
https with ALPN h2. --tls both runs each server twice per round, plaintext
and TLS (names NAME and NAME-tls), and reports the TLS cost per call (TLS
minus plaintext CPU per call, same server, same round) beside the ratios.

The handshake scenarios (--handshake, letters n and r) open a new
connection per call (bench/conn_client.py, --conn-workers processes): n
with a full handshake each time, r offering the session ticket of the
previous connection (resumed handshakes; the share the server really
resumed is printed). Server CPU per connection as above; over plaintext, n
is the cost of a connection without TLS and r is skipped.

--tracing compares tracing off (ours), on with the default sampler and a
live collector (node/otlp_receiver.js in quiet mode, decoding every export
with the OpenTelemetry JS packages, pinned with h2load), and on with
always_off, in one invocation; the ratios are off / on.

Not a test: nothing here asserts a timing.
"""

import argparse
import base64
import json
import os
import re
import resource
import secrets
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import jwt  # PyJWT (Debian python3-jwt)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import harness  # noqa: E402  (stubs, tokens, the raw gRPC client)
import conn_client  # noqa: E402  (new connections, one call each)

SERVICE = "/product.ProductService/"
OURS = ("build/bin/product-server --insecure --store memory "
        "--listen 127.0.0.1:0 --ready-file {ready}")
# Scenario letters as docs/performance.md uses them; b last, it grows the store.
# e: the right kid (with a key set) and another secret's signature; f: a kid
# the key set does not have (a single-secret server ignores kid, so there f
# is one more bad signature, behind a header it must parse).
#
# Every server starts with AUTH_FAILURE_LIMIT=off (peers ignore it), so that e
# and f go on measuring verification from one address. g and h measure the
# rate limits refusing (our server only, each on a fresh server with its
# limit on; the bucket is emptied before measuring): g the flood of forged
# tokens from one address beyond the default failed-authentication budget
# (10/s:100: the few the refill lets through each second are verified), h
# reads beyond a read limit. --limits adds our server with every limit on
# and never reached, to compare a-f with limits off.
SCENARIOS = {
    "a": ("GetProduct", "none", "OK"),
    "c": ("ListProducts", "none", "OK"),
    "d": ("DeleteProduct", "user", "PERMISSION_DENIED"),
    "e": ("CreateProduct", "forged", "UNAUTHENTICATED"),
    "f": ("CreateProduct", "unknown_kid", "UNAUTHENTICATED"),
    "b": ("CreateProduct", "user", "OK"),
    "g": ("CreateProduct", "forged", "RESOURCE_EXHAUSTED"),
    "h": ("GetProduct", "none", "RESOURCE_EXHAUSTED"),
    # New connection per call (bench/conn_client.py), not h2load.
    "n": ("GetProduct", "none", "OK"),  # full handshake each time
    "r": ("GetProduct", "none", "OK"),  # resumed with the previous ticket
}
HANDSHAKE = "nr"
ORDER = "acdefbgh"
# The server environment of the rate-limit scenarios (added to the usual).
LIMITED = {
    "g": {"AUTH_FAILURE_LIMIT": "10/s:100"},
    "h": {"RATE_LIMIT": "read=100/s:100"},
}
# --limits: every limit on, far above what one machine can send.
LIMITS_ON = {"RATE_LIMIT": "read=10000000/s:10000000,write=10000000/s:10000000",
             "AUTH_FAILURE_LIMIT": "10000000/s:10000000"}
KIDS = ("k1", "k2", "k3")  # every key may sign; tokens name the last one
UNKNOWN_KID = "k9"
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_cpu(pid):
    """utime + stime of pid in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def proc_status_kb(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def mint(key, kid=None):
    """A valid-claims HS256 token, role user, with a kid header if given."""
    now = int(time.time())
    claims = {"sub": "bench", "user_id": "bench", "role": "user", "iss": "product-service",
              "aud": "client", "iat": now, "nbf": now, "exp": now + 7200}
    return jwt.encode(claims, key, algorithm="HS256", headers={"kid": kid} if kid else None)


def write_key_set(path):
    """A JWK Set of len(KIDS) oct keys, written 0600; returns kid -> raw key."""
    raw = {kid: secrets.token_bytes(32) for kid in KIDS}
    keys = [{"kty": "oct", "kid": kid, "alg": "HS256", "key_ops": ["sign", "verify"],
             "k": base64.urlsafe_b64encode(raw[kid]).rstrip(b"=").decode()} for kid in KIDS]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"keys": keys}, f)
    return raw


class Peer:
    """One server under test: a name, a command, the CPUs it is pinned to,
    and whether it verifies with a key set rather than one secret."""

    def __init__(self, name, cmd, cpus, keys=False, env=None, limits=False, tls=None,
                 base=None):
        self.name, self.cmd, self.cpus, self.keys = name, cmd, cpus, keys
        self.env = env or {}  # added to the environment at start
        self.limits = limits  # ours: runs the rate-limit scenarios g and h
        self.tls = tls  # (certificate, key) paths, or None for plaintext
        self.base = base or name  # the server's name without "-tls"
        self.proc = None
        self.creds = None
        if tls:
            with open(tls[0], "rb") as f:
                self.creds = harness.grpc_mod().ssl_channel_credentials(root_certificates=f.read())

    def like(self, **kw):
        """The same server with some attributes changed (a fresh start)."""
        d = dict(name=self.name, cmd=self.cmd, cpus=self.cpus, keys=self.keys, env=self.env,
                 limits=self.limits, tls=self.tls, base=self.base)
        d.update(kw)
        return Peer(**d)

    def start(self, timeout=20):
        """Starts the server; returns (valid, forged, unknown-kid) tokens."""
        self.tmp = tempfile.mkdtemp(prefix="product-bench-")
        port = free_port()
        ready = os.path.join(self.tmp, "ready")
        subst = {"port": str(port), "addr": "127.0.0.1:%d" % port, "ready": ready,
                 "tmpdir": self.tmp}
        argv = [a.format(**subst) for a in shlex.split(self.cmd)]
        if self.tls:  # plaintext is what --insecure asks for: TLS is the default
            argv = [a for a in argv if a != "--insecure"]
        if self.cpus:
            argv = ["taskset", "-c", self.cpus] + argv
        env = dict(os.environ, LISTEN_ADDR=subst["addr"], PORT=str(port), READY_FILE=ready,
                   INSECURE="1", AUTH_FAILURE_LIMIT="off")
        env.update(self.env)
        if self.tls:
            del env["INSECURE"]
            env["TLS_CERT_FILE"], env["TLS_KEY_FILE"] = self.tls
        for var in ("JWT_SECRET", "JWT_SECRET_FILE", "JWT_KEYS_FILE"):
            env.pop(var, None)  # ours refuses a key set together with a secret
        other = secrets.token_bytes(32)
        if self.keys:
            env["JWT_KEYS_FILE"] = os.path.join(self.tmp, "keys.json")
            kid = KIDS[-1]
            key = write_key_set(env["JWT_KEYS_FILE"])[kid]
        else:
            kid, key = None, secrets.token_urlsafe(36)
            env["JWT_SECRET"] = key
        tokens = (mint(key, kid), mint(other, kid), mint(other, UNKNOWN_KID))
        self.log = open(os.path.join(self.tmp, "stderr.log"), "wb")
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                msg = "bench: %s exited (%d) at start: %s" % (
                    self.name, self.proc.returncode, self.stderr()[-2000:])
                self.stop()  # removes the key file too
                raise SystemExit(msg)
            addr = subst["addr"]
            if os.path.exists(ready):
                with open(ready) as f:
                    addr = f.read().strip() or addr
            if self._answers(addr, self.creds):
                self.addr = addr
                return tokens
            time.sleep(0.05)
        self.stop()
        raise SystemExit("bench: %s not ready within %ds" % (self.name, timeout))

    @staticmethod
    def _answers(addr, creds):
        try:
            with harness.Api(addr, credentials=creds) as api:
                api.health_check(timeout=0.5)
            return True
        except Exception:  # not listening yet: any failure means "poll again"
            return False

    def stderr(self):
        try:
            with open(os.path.join(self.tmp, "stderr.log"), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=12)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def grpc_frame(msg):
    body = msg.SerializeToString()
    return b"\0" + len(body).to_bytes(4, "big") + body


def requests_for(pb, seeded_id):
    return {
        "GetProduct": pb.GetProductRequest(id=seeded_id),
        "ListProducts": pb.ListProductsRequest(page_size=10),
        "DeleteProduct": pb.DeleteProductRequest(id="no-such-product"),
        "CreateProduct": pb.CreateProductRequest(name="bench widget", description="h2load",
                                                 price=9.5, categories=["bench"]),
    }


def seed(addr, creds, token, n):
    with harness.Api(addr, credentials=creds) as api:
        ids = [api.create(token, name="seed %d" % i, price=1.0 + i).id for i in range(n)]
    return ids[0]


def check_status(addr, creds, method, body, token, want):
    md = [("authorization", "Bearer " + token)] if token else []
    with harness.Api(addr, credentials=creds) as api:
        try:
            api.raw(SERVICE + method, body[5:], metadata=md, timeout=10)
            got = "OK"
        except harness.grpc_mod().RpcError as e:
            got = e.code().name
    if got != want:
        raise SystemExit("bench: %s answered %s, expected %s" % (method, got, want))


def h2load(args, peer, method, body_path, token, duration, log_path=None):
    cmd = ["h2load", "-c", str(args.c), "-m", str(args.m), "-t", "1", "-D", str(duration),
           "-d", body_path, "-H", "content-type: application/grpc", "-H", "te: trailers"]
    if token:
        cmd += ["-H", "authorization: Bearer " + token]
    if log_path:
        cmd += ["--log-file", log_path]
    cmd.append("%s://%s%s%s" % ("https" if peer.tls else "http", peer.addr, SERVICE, method))
    if args.client_cpus:
        cmd = ["taskset", "-c", args.client_cpus] + cmd
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    if out.returncode != 0:
        raise SystemExit("bench: h2load failed: %s" % (out.stdout + out.stderr)[-2000:])
    return out.stdout


def percentiles(log_path):
    """p50/p99 in ms from h2load's request log (start, status, duration µs)."""
    lat = []
    with open(log_path) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3:
                lat.append(int(parts[2]) / 1000.0)
    lat.sort()
    if not lat:
        return None, None
    return lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]


def drain(addr, creds, method, body, token, guard=100000):
    """Calls until the answer is RESOURCE_EXHAUSTED (a bucket is empty)."""
    md = [("authorization", "Bearer " + token)] if token else []
    grpc = harness.grpc_mod()
    with harness.Api(addr, credentials=creds) as api:
        for _ in range(guard):
            try:
                api.raw(SERVICE + method, body[5:], metadata=md, timeout=10)
            except grpc.RpcError as e:
                if e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                    return
    raise SystemExit("bench: %s never answered RESOURCE_EXHAUSTED" % method)


def run_scenario(args, peer, letter, body_path, token, want, method):
    pid = peer.proc.pid
    if want == "RESOURCE_EXHAUSTED":
        # Empties the bucket and sees the refusal: that is the status check
        # (a fresh check could find a token the refill brought back).
        drain(peer.addr, peer.creds, method, open(body_path, "rb").read(), token)
    else:
        check_status(peer.addr, peer.creds, method, open(body_path, "rb").read(), token, want)
    if letter in HANDSHAKE:
        return run_connections(args, peer, letter, body_path, token, method)
    h2load(args, peer, method, body_path, token, args.warmup)
    with open("/proc/%d/clear_refs" % pid, "w") as f:
        f.write("5")  # resets VmHWM: the peak of this scenario only
    log_path = body_path + ".log"
    cpu0, kids0 = proc_cpu(pid), resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    out = h2load(args, peer, method, body_path, token, args.duration, log_path)
    cpu, kids = proc_cpu(pid) - cpu0, resource.getrusage(resource.RUSAGE_CHILDREN)
    # h2load's own CPU share: near 100 % the load generator, not the server, is the limit.
    h2_cpu = (kids.ru_utime + kids.ru_stime - kids0.ru_utime - kids0.ru_stime) / (
        time.monotonic() - t0)
    done = int(re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded",
                         out).group(2))
    failed = int(re.search(r"(\d+) failed", out).group(1))
    rps = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out).group(1))
    p50, p99 = percentiles(log_path)
    os.unlink(log_path)
    return {"server": peer.name, "scenario": letter, "method": method, "expect": want,
            "req_s": rps, "requests": done, "failed": failed, "p50_ms": p50, "p99_ms": p99,
            "cpu_us_per_req": 1e6 * cpu / done if done else None,
            "peak_rss_mb": proc_status_kb(pid, "VmHWM") / 1024.0, "h2load_cpu": h2_cpu}


def run_connections(args, peer, letter, body_path, token, method):
    """Scenarios n and r: new connections with one call each, for
    args.duration seconds after a warm-up; CPU per connection."""
    pid = peer.proc.pid
    body = open(body_path, "rb").read()
    cert = peer.tls[0] if peer.tls else None
    go = lambda secs: conn_client.run(  # noqa: E731
        peer.addr, cert, letter == "r", SERVICE + method, body, token, secs,
        args.conn_workers, args.client_cpus)
    go(args.warmup)
    cpu0 = proc_cpu(pid)
    done, reused, failed, secs = go(args.duration)
    cpu = proc_cpu(pid) - cpu0  # over the workers' start-up too: nothing else reaches it
    return {"server": peer.name, "scenario": letter, "method": method, "expect": "OK",
            "req_s": done / secs, "requests": done, "failed": failed, "p50_ms": float("nan"),
            "p99_ms": float("nan"), "cpu_us_per_req": 1e6 * cpu / done if done else None,
            "peak_rss_mb": proc_status_kb(pid, "VmHWM") / 1024.0, "h2load_cpu": float("nan"),
            "resumed": reused / done if done else 0.0}


def one_server(args, peer, work, only=None):
    """Runs the scenarios (those without a server of their own, or only
    `only`) on one start of peer; then each rate-limit scenario on its own."""
    pb, _ = harness.stubs()
    letters = [only] if only else [x for x in args.scenarios if x not in LIMITED
                                   and (peer.tls or x != "r")]
    user, forged, unknown_kid = peer.start()
    results = []
    try:
        reqs = requests_for(pb, seed(peer.addr, peer.creds, user, args.products))
        for letter in letters:
            method, tok, want = SCENARIOS[letter]
            token = {"none": None, "user": user, "forged": forged,
                     "unknown_kid": unknown_kid}[tok]
            body_path = os.path.join(work, "%s-%s.bin" % (peer.name, letter))
            with open(body_path, "wb") as f:
                f.write(grpc_frame(reqs[method]))
            results.append(run_scenario(args, peer, letter, body_path, token, want, method))
            r = results[-1]
            if letter in HANDSHAKE:
                print("  %-14s %s new conn + %-10s %7.0f conn/s  %7.1f us CPU/conn  resumed %3.0f%%%s"
                      % (peer.name, letter, method, r["req_s"], r["cpu_us_per_req"] or 0,
                         100 * r["resumed"], "  FAILED %d" % r["failed"] if r["failed"] else ""),
                      flush=True)
                continue
            print("  %-10s %s %-14s %9.0f req/s  p50 %6.2f ms  p99 %6.2f ms  %6.1f us CPU/req"
                  "  RSS %5.1f MB  h2load %3.0f%%%s%s" % (
                      peer.name, letter, method, r["req_s"], r["p50_ms"], r["p99_ms"],
                      r["cpu_us_per_req"], r["peak_rss_mb"], 100 * r["h2load_cpu"],
                      " (h2load-bound)" if r["h2load_cpu"] > 0.85 else "",
                      "  FAILED %d" % r["failed"] if r["failed"] else ""),
                  flush=True)
    finally:
        peer.stop()
    if only is None and peer.limits:
        for letter in [x for x in args.scenarios if x in LIMITED]:
            limited = peer.like(env=dict(peer.env, **LIMITED[letter]), limits=False)
            results += one_server(args, limited, work, only=letter)
    return results


def summary(peers, rounds, scenarios):
    med = lambda xs: statistics.median(xs) if xs else float("nan")  # noqa: E731
    by = {}
    for rnd in rounds:
        for r in rnd:
            by.setdefault((r["server"], r["scenario"]), []).append(r)
    print("\nmedians over %d round(s)" % len(rounds))
    print("%-10s %-18s %10s %9s %9s %11s %8s %7s" % (
        "server", "scenario", "req/s", "p50 ms", "p99 ms", "CPU us/req", "RSS MB", "h2load"))
    for p in peers:
        for s in scenarios:
            rs = by.get((p.name, s), [])
            print("%-10s %-18s %10.0f %9.2f %9.2f %11.1f %8.1f %6.0f%%" % (
                p.name, s + " " + SCENARIOS[s][0], med([r["req_s"] for r in rs]),
                med([r["p50_ms"] for r in rs]), med([r["p99_ms"] for r in rs]),
                med([r["cpu_us_per_req"] for r in rs]), med([r["peak_rss_mb"] for r in rs]),
                100 * med([r["h2load_cpu"] for r in rs])))
    # Each peer against our server over the same transport (plaintext or TLS).
    ours_by_tls = {}
    for p in peers:
        ours_by_tls.setdefault(bool(p.tls), p)
    for p in peers:
        ours = ours_by_tls[bool(p.tls)]
        if p is ours:
            continue
        print("\n%s / %s, per-round ratio, median [min..max] "
              "(req/s > 1: %s faster; CPU/req < 1: %s cheaper)" % (
                  ours.name, p.name, ours.name, ours.name))
        for s in scenarios:
            a = by.get((ours.name, s), [])
            b = by.get((p.name, s), [])
            rr = [x["req_s"] / y["req_s"] for x, y in zip(a, b) if y["req_s"]]
            cr = [x["cpu_us_per_req"] / y["cpu_us_per_req"] for x, y in zip(a, b)
                  if y["cpu_us_per_req"]]
            if rr and cr:
                print("  %s %-14s req/s %.3f [%.3f..%.3f]   CPU/req %.3f [%.3f..%.3f]" % (
                    s, SCENARIOS[s][0], med(rr), min(rr), max(rr), med(cr), min(cr), max(cr)))
    tls_cost(peers, by, scenarios, med)
    for num, den, what in (("g", "e", "forged flood beyond the budget (g) / verified (e)"),
                           ("h", "a", "read beyond the limit (h) / served GetProduct (a)")):
        if num in scenarios and den in scenarios:
            for p in peers:
                cr = [x["cpu_us_per_req"] / y["cpu_us_per_req"]
                      for x, y in zip(by.get((p.name, num), []), by.get((p.name, den), []))
                      if y["cpu_us_per_req"]]
                if cr:
                    print("\n%s, %s CPU/req per round: median %.3f [%.3f..%.3f]" % (
                        p.name, what, med(cr), min(cr), max(cr)))
    if "e" in scenarios and "f" in scenarios:
        print("\nunknown kid (f) / bad signature (e), CPU/req per round, median [min..max]")
        for p in peers:
            cr = [x["cpu_us_per_req"] / y["cpu_us_per_req"]
                  for x, y in zip(by.get((p.name, "f"), []), by.get((p.name, "e"), []))
                  if y["cpu_us_per_req"]]
            if cr:
                print("  %-10s %.3f [%.3f..%.3f]%s" % (
                    p.name, med(cr), min(cr), max(cr),
                    "" if p.keys else "  (no key set: f is a bad signature too)"))


def tls_cost(peers, by, scenarios, med):
    """--tls both: CPU per call over TLS minus plaintext, per server and round
    (for n: per connection, the handshake), and ours / each peer's."""
    pairs = [(p, q) for p in peers for q in peers
             if not p.tls and q.tls and p.base == q.base and p.name != q.name]
    if not pairs:
        return
    cost = {}
    for plain, tls in pairs:
        for s in scenarios:
            a, b = by.get((plain.name, s), []), by.get((tls.name, s), [])
            d = [y["cpu_us_per_req"] - x["cpu_us_per_req"] for x, y in zip(a, b)
                 if x["cpu_us_per_req"] is not None and y["cpu_us_per_req"] is not None]
            if d:
                cost[(plain.base, s)] = d
    print("\nTLS cost, us CPU per call (n: per connection) = TLS minus plaintext, "
          "per-round median [min..max]")
    for plain, _ in pairs:
        line = "  %-10s" % plain.base
        for s in scenarios:
            d = cost.get((plain.base, s))
            if d:
                line += "  %s %6.1f [%.1f..%.1f]" % (s, med(d), min(d), max(d))
        print(line)
    ours = pairs[0][0].base
    for plain, _ in pairs[1:]:
        line = "  %s / %s TLS cost:" % (ours, plain.base)
        for s in scenarios:
            a, b = cost.get((ours, s)), cost.get((plain.base, s))
            if a and b and med(b) > 0:
                line += "  %s %.2f" % (s, med(a) / med(b))
        print(line)
    if "r" in scenarios and "n" in scenarios:
        print("\nresumed / full handshake, server CPU per connection over TLS (TLS minus "
              "plaintext n in brackets)")
        for _, tls in pairs:
            n = [r["cpu_us_per_req"] for r in by.get((tls.name, "n"), []) if r["cpu_us_per_req"]]
            r_ = [r["cpu_us_per_req"] for r in by.get((tls.name, "r"), [])
                  if r["cpu_us_per_req"]]
            res = [r["resumed"] for r in by.get((tls.name, "r"), [])]
            nc, rc = cost.get((tls.base, "n")), None
            if n and r_:
                if nc:
                    plain_n = med(n) - med(nc)
                    rc = med(r_) - plain_n
                print("  %-14s full %7.1f us  resumed %7.1f us (%.0f%% resumed)  ratio %.2f%s" % (
                    tls.name, med(n), med(r_), 100 * med(res), med(r_) / med(n),
                    "  [handshake only: full %.1f, resumed %.1f, ratio %.2f]" % (
                        med(nc), rc, rc / med(nc)) if nc and med(nc) > 0 else ""))


def make_cert(work, kind):
    """A self-signed certificate for 127.0.0.1/localhost in work; returns
    (cert, key) paths. kind: ecdsa (P-256) or rsa2048."""
    cert, key = os.path.join(work, "tls.crt"), os.path.join(work, "tls.key")
    newkey = {"ecdsa": ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
              "rsa2048": ["-newkey", "rsa:2048"]}[kind]
    subprocess.run(["openssl", "req", "-x509", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", key, "-out", cert] + newkey,
                   check=True, capture_output=True, timeout=60)
    os.chmod(key, 0o600)
    return cert, key


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--server", default=OURS, help="our server's command (default: %(default)s)")
    ap.add_argument("--name", default="c", help="our server's name in the output")
    ap.add_argument("--peer", action="append", default=[], metavar="NAME=CMD",
                    help="a peer server to compare with (repeatable); also BENCH_GO_SEED "
                         "and BENCH_CPP_CORE")
    ap.add_argument("--keys-peer", action="append", default=[], metavar="NAME=CMD",
                    help="a peer started with JWT_KEYS_FILE (3 keys) instead of JWT_SECRET, "
                         "its tokens carrying a kid (repeatable)")
    ap.add_argument("--keys", action="store_true",
                    help="also run our server with a key set, as peer NAME-keys "
                         "(same as --keys-peer NAME-keys=SERVER)")
    ap.add_argument("--limits", action="store_true",
                    help="also run our server with every rate limit on and never reached, "
                         "as peer NAME-limits")
    ap.add_argument("--peer-limits", action="store_true",
                    help="run the rate-limit scenarios g and h on --peer servers too "
                         "(another build of ours, e.g. before/after a change)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=6, help="seconds of h2load per scenario")
    ap.add_argument("--warmup", type=int, default=1, help="seconds of h2load before measuring")
    ap.add_argument("-c", type=int, default=16, help="h2load connections")
    ap.add_argument("-m", type=int, default=8, help="h2load streams per connection")
    ap.add_argument("--products", type=int, default=1000, help="products seeded first")
    ap.add_argument("--scenarios", default=ORDER, help="letters out of %s" % ORDER)
    ap.add_argument("--server-cpus", default="0")
    ap.add_argument("--client-cpus", default="1")
    ap.add_argument("--no-pin", action="store_true", help="do not pin with taskset")
    ap.add_argument("--json", metavar="PATH", help="also write every run as JSON lines")
    ap.add_argument("--tls", choices=("off", "on", "both"), default="off",
                    help="every server over TLS (on), or plaintext and TLS side by side (both)")
    ap.add_argument("--tls-key", choices=("ecdsa", "rsa2048"), default="ecdsa",
                    help="the generated certificate's key: ECDSA P-256 or RSA 2048")
    ap.add_argument("--handshake", action="store_true",
                    help="add the new-connection scenarios n (full handshake) and r (resumed)")
    ap.add_argument("--conn-workers", type=int, default=4,
                    help="client processes of the new-connection scenarios")
    ap.add_argument("--tracing", action="store_true",
                    help="ours without tracing vs with an OTLP collector vs always_off")
    args = ap.parse_args()
    if args.handshake:
        args.scenarios += HANDSHAKE
    args.scenarios = [s for s in dict.fromkeys(args.scenarios.replace(",", ""))
                      if s in SCENARIOS]
    if args.no_pin or os.cpu_count() < 2 or not shutil.which("taskset"):
        args.server_cpus = args.client_cpus = None
    for env, name in (("BENCH_GO_SEED", "go-seed"), ("BENCH_CPP_CORE", "cpp-core")):
        if os.environ.get(env):
            args.peer.append("%s=%s" % (name, os.environ[env]))
    return args


def start_receiver(cpus):
    """The OTLP receiver of the tests, counting only; returns (proc, base URL)."""
    node_dir = os.path.join(ROOT, "tests", "integration", "node")
    argv = ["node", "otlp_receiver.js"]
    if cpus:
        argv = ["taskset", "-c", cpus] + argv
    proc = subprocess.Popen(argv, cwd=node_dir, stdout=subprocess.PIPE,
                            env=dict(os.environ, OTLP_RECEIVER_QUIET="1"))
    line = proc.stdout.readline().decode()
    m = re.match(r"listening (\d+)", line)
    if not m:
        proc.kill()
        raise SystemExit("bench: the OTLP receiver did not start: %r" % line)
    return proc, "http://127.0.0.1:%s" % m.group(1)


def stop_receiver(proc):
    """Stops the receiver (if any) and prints its last line: the spans and
    requests it counted."""
    if proc:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
        print("collector: %s" % out.decode().strip().splitlines()[-1])


def main():
    args = parse_args()
    for tool in ("h2load", "protoc"):
        if not shutil.which(tool):
            raise SystemExit("bench: %s not found (tools/install-deps.sh installs it)" % tool)
    receiver = None
    if args.tracing:
        receiver, url = start_receiver(args.client_cpus)
        args.name = args.name + "-off"
        args.peer.append("c-traced=env OTEL_EXPORTER_OTLP_ENDPOINT=%s %s" % (url, args.server))
        args.peer.append("c-always-off=env OTEL_EXPORTER_OTLP_ENDPOINT=%s "
                         "OTEL_TRACES_SAMPLER=always_off %s" % (url, args.server))
    peers = [Peer(args.name, args.server, args.server_cpus, limits=True)]
    if args.limits:
        peers.append(Peer(args.name + "-limits", args.server, args.server_cpus, env=LIMITS_ON))
    if args.keys:
        args.keys_peer.insert(0, "%s-keys=%s" % (args.name, args.server))
    for spec, keys in [(s, False) for s in args.peer] + [(s, True) for s in args.keys_peer]:
        name, sep, cmd = spec.partition("=")
        if not sep or not cmd:
            raise SystemExit("bench: --peer and --keys-peer want NAME=CMD, got %r" % spec)
        peers.append(Peer(name, cmd, args.server_cpus, keys, limits=args.peer_limits))
    work = tempfile.mkdtemp(prefix="product-bench-work-")
    if args.tls != "off":
        tls = make_cert(work, args.tls_key)
        twins = [p.like(name=p.name + "-tls", tls=tls, base=p.name) for p in peers]
        peers = twins if args.tls == "on" else peers + twins
        print("TLS: a self-signed %s certificate for every server" % args.tls_key)
    print("pinning: %s" % ("server CPU %s, h2load CPU %s" % (args.server_cpus, args.client_cpus)
                           if args.server_cpus else "off"))
    rounds = []
    try:
        for n in range(args.rounds):
            order = peers if n % 2 == 0 else peers[::-1]
            print("round %d/%d" % (n + 1, args.rounds), flush=True)
            rnd = []
            for p in order:
                rnd += one_server(args, p, work)
            rounds.append(rnd)
            if args.json:
                with open(args.json, "a") as f:
                    for r in rnd:
                        f.write(json.dumps(dict(r, round=n + 1)) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        stop_receiver(receiver)
    summary(peers, rounds, args.scenarios)


if __name__ == "__main__":
    main()
