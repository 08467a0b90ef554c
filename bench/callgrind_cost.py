#!/usr/bin/python3
"""Instructions per call of product-server, counted by callgrind.

For each scenario: start the server under valgrind --tool=callgrind, seed
products, check the scenario's status with one
real call (or empty the bucket of a rate-limit scenario), send a warm-up of
h2load calls, then zero the counters (callgrind_control -z), send exactly N
calls with h2load -n, dump (callgrind_control -d) and divide the dump's total
by N. The count is the server process's user-space instructions (every
thread; the kernel's work for its syscalls is not in it): unlike CPU time it
does not move with the load of the machine, so it compares two builds or two
scenarios on a shared machine. Under callgrind the server runs some 50 times
slower, so the rate-limit scenarios refill at a rate that lets nothing
through while N calls run (AUTH_FAILURE_LIMIT=0.001/s:100 for g,
RATE_LIMIT=read=0.001/s:100 for h): every measured call is refused, as with
the default budget at full speed (10 of 38,000 a second).

Scenarios are h2load_bench.py's letters, plus n (GetProduct of an id that is
not there: NOT_FOUND, a non-OK answer with no limit behind it). --limits
runs each scenario without a limit of its own (all but g and h) a second
time with every limit on and never reached (h2load_bench.py's LIMITS_ON) and
prints the ratio on / off. --keep DIR keeps the dumps for callgrind_annotate
(DIR/callgrind.LETTER, DIR/callgrind.LETTER-limits). Not a test: nothing here
asserts a count.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import h2load_bench as hb  # noqa: E402

SCENARIOS = dict(hb.SCENARIOS)
SCENARIOS["n"] = ("GetProduct", "none", "NOT_FOUND")
# AUTH_FAILURE_LIMIT=off as in h2load_bench.py, except where a scenario says.
ENV = {
    "g": {"AUTH_FAILURE_LIMIT": "0.001/s:100"},
    "h": {"RATE_LIMIT": "read=0.001/s:100"},
}


def dump_total(path):
    with open(path) as f:
        for line in f:
            m = re.match(r"(?:summary|totals): (\d+)", line)
            if m:
                return int(m.group(1))
    raise SystemExit("callgrind: no total in %s" % path)


def h2load_n(args, addr, method, body_path, token, n):
    cmd = ["h2load", "-c", str(args.c), "-m", str(args.m), "-t", "1", "-n", str(n),
           "-d", body_path, "-H", "content-type: application/grpc", "-H", "te: trailers"]
    if token:
        cmd += ["-H", "authorization: Bearer " + token]
    cmd.append("http://%s%s%s" % (addr, hb.SERVICE, method))
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    m = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", out.stdout)
    if out.returncode != 0 or not m or int(m.group(2)) != n:
        raise SystemExit("callgrind: h2load did not complete %d calls: %s" % (
            n, (out.stdout + out.stderr)[-2000:]))


def control(pid, flag):
    out = subprocess.run(["callgrind_control", flag, str(pid)], capture_output=True, text=True,
                         timeout=120)
    if out.returncode != 0:
        raise SystemExit("callgrind_control %s failed: %s" % (flag, out.stdout + out.stderr))


def one(args, letter, work, env=None):
    method, tok, want = SCENARIOS[letter]
    out_dir = tempfile.mkdtemp(prefix="cg-", dir=work)
    cmd = ("valgrind --tool=callgrind --callgrind-out-file=%s/cg.%%p "
           "%s" % (out_dir, args.server))
    peer = hb.Peer("c", cmd, None, env=env if env is not None else ENV.get(letter))
    user, forged, unknown_kid = peer.start(timeout=300)
    try:
        pb, _ = hb.harness.stubs()
        reqs = hb.requests_for(pb, hb.seed(peer.addr, user, args.products))
        if letter == "n":
            reqs["GetProduct"] = pb.GetProductRequest(id="no-such-product")
        token = {"none": None, "user": user, "forged": forged, "unknown_kid": unknown_kid}[tok]
        body = hb.grpc_frame(reqs[method])
        body_path = os.path.join(out_dir, "body.bin")
        with open(body_path, "wb") as f:
            f.write(body)
        if want == "RESOURCE_EXHAUSTED":
            hb.drain(peer.addr, method, body, token)
        else:
            hb.check_status(peer.addr, method, body, token, want)
        h2load_n(args, peer.addr, method, body_path, token, args.warmup)
        pid = peer.proc.pid
        control(pid, "-z")
        h2load_n(args, peer.addr, method, body_path, token, args.calls)
        control(pid, "-d")
        dumps = sorted(p for p in os.listdir(out_dir) if p.startswith("cg.%d." % pid))
        if not dumps:
            raise SystemExit("callgrind: no dump in %s" % out_dir)
        total = dump_total(os.path.join(out_dir, dumps[-1]))
        if args.keep:
            os.makedirs(args.keep, exist_ok=True)
            shutil.copy(os.path.join(out_dir, dumps[-1]), os.path.join(
                args.keep, "callgrind.%s%s" % (letter, "-limits" if env else "")))
    finally:
        peer.stop()
    return total / args.calls


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--server", default=hb.OURS, help="our server's command (default: %(default)s)")
    ap.add_argument("--scenarios", default="anhdeg", help="letters out of %s" % "".join(SCENARIOS))
    ap.add_argument("--limits", action="store_true",
                    help="also run each scenario with every limit on and never reached")
    ap.add_argument("--calls", type=int, default=2000, help="calls counted per scenario")
    ap.add_argument("--warmup", type=int, default=500, help="calls before counting")
    ap.add_argument("-c", type=int, default=4, help="h2load connections")
    ap.add_argument("-m", type=int, default=8, help="h2load streams per connection")
    ap.add_argument("--products", type=int, default=100, help="products seeded first")
    ap.add_argument("--keep", metavar="DIR", help="keep each dump as DIR/callgrind.LETTER")
    args = ap.parse_args()
    for tool in ("valgrind", "callgrind_control", "h2load"):
        if not shutil.which(tool):
            raise SystemExit("callgrind: %s not found" % tool)
    os.chdir(hb.ROOT)  # the default command is relative to the checkout
    work = tempfile.mkdtemp(prefix="product-callgrind-")
    try:
        for letter in args.scenarios:
            if letter not in SCENARIOS:
                raise SystemExit("callgrind: unknown scenario %r" % letter)
            method, _, want = SCENARIOS[letter]
            ir = one(args, letter, work)
            line = "%s %-14s %-18s %9.0f instructions/call" % (letter, method, want, ir)
            if args.limits and letter not in ENV:
                on = one(args, letter, work, env=hb.LIMITS_ON)
                line += "   limits on, not reached: %9.0f (on / off %.3f)" % (on, on / ir)
            print(line, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
