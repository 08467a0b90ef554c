#!/usr/bin/python3
"""Instructions per call of product-server, counted by callgrind.

Wall-clock figures on a shared machine move with the load; instruction
counts do not, so they compare two builds or two settings. This starts a
server (ours by default, or any command, as in bench/h2load_bench.py) under
`valgrind --tool=callgrind --instr-atstart=no`, seeds products, and for each
scenario: one real call checks the status (a rate-limit scenario instead
calls until its bucket is empty), a warm-up of --warmup calls, then the
counters zeroed and instrumentation on for exactly --calls calls driven by
h2load -n, instrumentation off, a dump, and the dump's total divided by
--calls. The count is the server process's user-space instructions, every
thread (the kernel's work for its syscalls is not in it). Not a test:
nothing here asserts a count.

Scenarios are h2load_bench.py's letters (a c d e f b g h), plus n: GetProduct
of an id that is not there (NOT_FOUND, a non-OK answer with no limit behind
it). Under callgrind the server runs some 50 times slower, so g and h refill
at a rate that lets nothing through while the calls run
(AUTH_FAILURE_LIMIT=0.001/s:100, RATE_LIMIT=read=0.001/s:100): every
measured call is refused, as with the default budget at full speed.

Modes, each with the defaults its figures in docs/ were measured with:

  plaintext / --tls   -c 1 -m 1 (one call at a time: how many calls share a
                      read or a write under valgrind depends on timing),
                      --calls 4000, --warmup 500, --products 50, one server
                      for every scenario. --handshake adds the new-connection
                      scenarios (bench/conn_client.py, one after the other):
                      n (a full handshake per connection) and, with --tls, r
                      (resumed): instructions per connection.
  rate limits         --limits, or any of the scenarios f g h n: -c 4 -m 8,
                      --calls 2000, --warmup 500, --products 100, a fresh
                      server for each scenario. --limits runs each scenario
                      without a limit of its own (all but g and h) a second
                      time with every limit on and never reached
                      (h2load_bench.py's LIMITS_ON) and prints on / off.
  --tracing MODE      off, on (the OTLP receiver of the tests,
                      node/otlp_receiver.js, quiet, and the default sampler:
                      every call sampled) or always_off: -c 4 -m 8, --calls
                      2000, --warmup 200, --products 20, one server, 6 s for
                      the exporter after the warm-up and again after the
                      counted calls (inside the count, so the exporter
                      thread's share of them is counted), and the five
                      largest threads' counts (--separate-threads).

-c, -m, --calls, --warmup and --products given on the command line win.

    bench/callgrind_calls.py --scenarios ac --keep /tmp/cg-plain
    bench/callgrind_calls.py --tls --scenarios acdeb --handshake --keep /tmp/cg-tls
    bench/callgrind_calls.py --scenarios acdefbnhg --limits
    bench/callgrind_calls.py --tracing on --scenarios acdeb
    callgrind_annotate --inclusive=yes /tmp/cg-tls/callgrind.out.a | head -60
"""

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import h2load_bench as hb  # noqa: E402  (scenarios, Peer, tokens, seeding, certificates)
import conn_client  # noqa: E402  (new connections, one call each)

SCENARIOS = dict(hb.SCENARIOS)
SCENARIOS["n"] = ("GetProduct", "none", "NOT_FOUND")  # in --scenarios; --handshake's n is apart
ORDER = "acdefbnhg"
# A server environment of its own (added to the usual, AUTH_FAILURE_LIMIT=off).
LIMITED = {
    "g": {"AUTH_FAILURE_LIMIT": "0.001/s:100"},
    "h": {"RATE_LIMIT": "read=0.001/s:100"},
}
# Defaults per mode: -c, -m, --calls, --warmup, --products, --settle (seconds).
DEFAULTS = {
    "calls": dict(c=1, m=1, calls=4000, warmup=500, products=50, settle=0),
    "limits": dict(c=4, m=8, calls=2000, warmup=500, products=100, settle=0),
    "tracing": dict(c=4, m=8, calls=2000, warmup=200, products=20, settle=6),
}
VALGRIND = ("valgrind --tool=callgrind --instr-atstart=no --dump-instr=no%s "
            "--callgrind-out-file={tmpdir}/cg.%%p ")


def ctl(pid, *what):
    out = subprocess.run(["callgrind_control"] + list(what) + [str(pid)],
                         capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise SystemExit("callgrind_control %s failed: %s" % (
            " ".join(what), out.stdout + out.stderr))


def dump(peer):
    """Dumps and returns {file: instructions} of the files that dump wrote
    (one, or one per thread with --separate-threads)."""
    pattern = os.path.join(peer.tmp, "cg.%d*" % peer.proc.pid)
    before = set(glob.glob(pattern))
    ctl(peer.proc.pid, "-d")
    per = {}
    for path in sorted(set(glob.glob(pattern)) - before):
        # "totals:" (the sum of the costs listed); callgrind 3.19's "summary:"
        # can wrap below zero when threads were inside functions at the toggle.
        with open(path) as f:
            for line in f:
                m = re.match(r"totals: (\d+)", line)
                if m:
                    per[path] = int(m.group(1))
                    break
            else:
                raise SystemExit("callgrind: no totals in %s" % path)
    if not per:
        raise SystemExit("callgrind: no dump written")
    return per


def h2load_n(args, peer, method, body_path, token, n):
    cmd = ["h2load", "-c", str(args.c), "-m", str(args.m), "-t", "1", "-n", str(n),
           "-d", body_path, "-H", "content-type: application/grpc", "-H", "te: trailers"]
    cmd += args.h2load_args.split()
    if token:
        cmd += ["-H", "authorization: Bearer " + token]
    cmd.append("%s://%s%s%s" % ("https" if peer.tls else "http", peer.addr, hb.SERVICE, method))
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    m = re.search(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded", out.stdout)
    if out.returncode != 0 or not m or int(m.group(1)) != n:
        raise SystemExit("callgrind: h2load did not complete %d calls: %s" % (
            n, (out.stdout + out.stderr)[-2000:]))
    return n, 0, 0


def measure(args, peer, tokens, reqs, key, work):
    """One scenario on a started server: status check, warm-up, count.
    key: a scenario letter, or "conn-n"/"conn-r" for --handshake's.
    Returns ({dump file: instructions}, calls done, resumed, failed)."""
    conn = key.startswith("conn-")
    letter = key[-1]
    method, tok, want = hb.SCENARIOS[letter] if conn else SCENARIOS[letter]
    token = dict(zip(("user", "forged", "unknown_kid"), tokens)).get(tok)
    req = reqs[method]
    if key == "n":
        req = hb.harness.stubs()[0].GetProductRequest(id="no-such-product")
    body = hb.grpc_frame(req)
    body_path = os.path.join(work, key + ".bin")
    with open(body_path, "wb") as f:
        f.write(body)
    if want == "RESOURCE_EXHAUSTED":
        # Empties the bucket and sees the refusal: that is the status check.
        hb.drain(peer.addr, peer.creds, method, body, token)
    else:
        hb.check_status(peer.addr, peer.creds, method, body, token, want)
    if conn:
        def run(n):
            return conn_client.run_count(peer.addr, peer.tls[0] if peer.tls else None,
                                         letter == "r", hb.SERVICE + method, body, token, n)
    else:
        def run(n):
            return h2load_n(args, peer, method, body_path, token, n)
    run(args.warmup)
    time.sleep(args.settle)  # the exporter posts what the warm-up queued
    pid = peer.proc.pid
    ctl(pid, "-z")
    ctl(pid, "-i", "on")
    done, reused, failed = run(args.calls)
    time.sleep(args.settle)  # ... and what the counted calls queued, inside the count
    ctl(pid, "-i", "off")
    return dump(peer), done, reused, failed


def keep(args, per, name):
    if not args.keep:
        return
    os.makedirs(args.keep, exist_ok=True)
    for i, path in enumerate(sorted(per)):
        shutil.copy(path, os.path.join(args.keep, "callgrind.out.%s%s" % (
            name, "-%d" % (i + 1) if len(per) > 1 else "")))


def run_on(args, peer, keys, work, suffix=""):
    """Starts peer, seeds, measures each of keys; yields (key, result)."""
    tokens = peer.start(timeout=300)
    try:
        reqs = hb.requests_for(hb.harness.stubs()[0],
                               hb.seed(peer.addr, peer.creds, tokens[0], args.products))
        for key in keys:
            per, done, reused, failed = measure(args, peer, tokens, reqs, key, work)
            # --handshake's n and r keep their letter unless n (NOT_FOUND) is there too
            name = key[-1] if key.startswith("conn-") and "n" not in args.scenarios else key
            keep(args, per, name + suffix)
            yield key, per, done, reused, failed
    finally:
        peer.stop()


def report(args, key, per, done, reused, failed, tls, extra=""):
    conn = key.startswith("conn-")
    letter = key[-1]
    method, _, want = hb.SCENARIOS[letter] if conn else SCENARIOS[letter]
    line = "%s %-14s %-18s %s: %9.0f instructions per %s (%d done%s%s)" % (
        letter, method, want, "TLS" if tls else "plaintext", sum(per.values()) / done,
        "connection" if conn else "call", done,
        ", %d resumed" % reused if letter == "r" and conn else "",
        ", %d FAILED" % failed if failed else "")
    if args.separate_threads:
        top = sorted(per.values(), reverse=True)[:5]
        line += " (threads: %s)" % ", ".join("%.0f" % (v / done) for v in top)
    print(line + extra, flush=True)


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", default=hb.OURS, help="our server's command (default: %(default)s)")
    ap.add_argument("--env", action="append", default=[], metavar="VAR=VALUE",
                    help="added to the server's environment (repeatable)")
    ap.add_argument("--scenarios", help="letters out of %s (default: ac; anhdeg for the rate "
                    "limits; a for --tracing)" % ORDER)
    ap.add_argument("--tls", action="store_true", help="serve TLS with a generated certificate")
    ap.add_argument("--tls-key", choices=("ecdsa", "rsa2048"), default="ecdsa")
    ap.add_argument("--handshake", action="store_true",
                    help="add new connections with one call each: n, and r with --tls")
    ap.add_argument("--limits", action="store_true",
                    help="also run each scenario with every limit on and never reached")
    ap.add_argument("--tracing", choices=("off", "on", "always_off"),
                    help="tracing mode: no exporter, an OTLP receiver, or always_off")
    ap.add_argument("--separate-threads", action="store_true",
                    help="per-thread counts (the default with --tracing)")
    ap.add_argument("--calls", "-n", type=int, help="calls counted per scenario")
    ap.add_argument("--warmup", type=int, help="calls before counting")
    ap.add_argument("-c", type=int, help="h2load connections")
    ap.add_argument("-m", type=int, help="h2load streams per connection")
    ap.add_argument("--products", type=int, help="products seeded first")
    ap.add_argument("--settle", type=float, help="seconds waited after the warm-up and after "
                    "the counted calls (6 with --tracing, for the exporter)")
    ap.add_argument("--keep", "--out", metavar="DIR",
                    help="keep each dump as DIR/callgrind.out.LETTER")
    ap.add_argument("--h2load-args", default="", help="extra h2load arguments")
    args = ap.parse_args()
    if args.scenarios is None:
        args.scenarios = "a" if args.tracing else "anhdeg" if args.limits else "ac"
    for s in args.scenarios:
        if s not in SCENARIOS or s == "r":
            raise SystemExit("callgrind: unknown scenario %r (letters: %s)" % (s, ORDER))
    if args.tracing and args.limits:
        raise SystemExit("callgrind: --tracing and --limits are separate runs")
    mode = "tracing" if args.tracing else \
        "limits" if args.limits or set(args.scenarios) & set("fghn") else "calls"
    for name, value in DEFAULTS[mode].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.tracing:
        args.separate_threads = True
    args.mode = mode
    return args


def main():
    args = parse_args()
    for tool in ("valgrind", "callgrind_control", "h2load"):
        if not shutil.which(tool):
            raise SystemExit("callgrind: %s not found" % tool)
    os.chdir(hb.ROOT)  # the default command is relative to the checkout
    env = dict(e.split("=", 1) for e in args.env)
    receiver = None
    if args.tracing:
        for var in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                    "OTEL_TRACES_SAMPLER"):
            os.environ.pop(var, None)  # the mode alone says where spans go
        env["GRPC_DNS_RESOLVER"] = "native"
        if args.tracing != "off":
            receiver, url = hb.start_receiver(None)
            env["OTEL_EXPORTER_OTLP_ENDPOINT"] = url
            if args.tracing == "always_off":
                env["OTEL_TRACES_SAMPLER"] = "always_off"
    work = tempfile.mkdtemp(prefix="product-cg-")
    tls = hb.make_cert(work, args.tls_key) if args.tls else None
    cmd = VALGRIND % (" --separate-threads=yes" if args.separate_threads else "") + args.server

    def peer(extra=None):
        return hb.Peer("server", cmd, None, env=dict(env, **(extra or {})), tls=tls)

    keys = list(args.scenarios)
    if args.handshake:
        keys += ["conn-n"] + (["conn-r"] if tls else [])
    if args.mode == "limits":  # a fresh server for each scenario
        groups = [[k] for k in keys]
    else:  # one server, but g and h each on one with its limit on
        groups = [[k for k in keys if k not in LIMITED]] + [[k] for k in keys if k in LIMITED]
    try:
        for group in filter(None, groups):
            results = run_on(args, peer(LIMITED.get(group[0])), group, work)
            if args.limits:
                results = list(results)  # stopped before the next start
            for key, *result in results:
                extra = " [tracing %s]" % args.tracing if args.tracing else ""
                if args.limits and key not in LIMITED:
                    (_, *on), = run_on(args, peer(hb.LIMITS_ON), [key], work, "-limits")
                    ir, ir_on = (sum(r[0].values()) / r[1] for r in (result, on))
                    extra = "   limits on, not reached: %9.0f (on / off %.3f)" % (
                        ir_on, ir_on / ir)
                report(args, key, *result, tls, extra)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        hb.stop_receiver(receiver)


if __name__ == "__main__":
    main()
